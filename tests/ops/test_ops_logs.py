"""`python -m generator logs SERVICE` against moto's CloudWatch Logs: the app's lines or
the proxy's (by awslogs stream prefix), --since, --follow, and one-line refusals."""
from __future__ import annotations

import io
import json
import time

import pytest

from generator.ops import logs

GROUP = "/ecs/shop-cluster/store"


@pytest.fixture
def store_stack(boto, project):
    """The store's stack with its log group, as service.yaml makes it (LogGroupName
    output), and lines from the app, the proxy and another task."""
    template = {"Resources": {"LogGroup": {"Type": "AWS::Logs::LogGroup",
                                           "Properties": {"LogGroupName": GROUP}}},
                "Outputs": {"LogGroupName": {"Value": {"Ref": "LogGroup"}}}}
    boto("cloudformation").create_stack(StackName="shop-store",
                                        TemplateBody=json.dumps(template))
    client = boto("logs")
    now = int(time.time() * 1000)
    streams = {"app/app/0123456789abcdef0": ["GET /healthz 200", "GET /peers 200"],
               "service-connect/ecs-service-connect-x/0123456789abcdef0": ["[envoy] ready"],
               "app/app/fedcba98765432100": ["worker booted"]}
    for offset, (stream, messages) in enumerate(sorted(streams.items())):
        client.create_log_stream(logGroupName=GROUP, logStreamName=stream)
        client.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=[
            {"timestamp": now - 60_000 + offset * 1000 + i, "message": message}
            for i, message in enumerate(messages)])
    old = "app/app/00000000000000000"
    client.create_log_stream(logGroupName=GROUP, logStreamName=old)
    client.put_log_events(logGroupName=GROUP, logStreamName=old, logEvents=[
        {"timestamp": now - 2 * 3600_000, "message": "two hours ago"}])
    return client


def test_the_apps_lines_of_the_last_ten_minutes(project, run, store_stack):
    code, out, err = run(project.cli("logs", "store"))

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split(" ", 3)[3] for line in lines] == [
        "GET /healthz 200", "GET /peers 200", "worker booted"]
    assert lines[0].split()[2] == "0123456789ab"  # the task id, from the stream name
    assert "two hours ago" not in out and "envoy" not in out


def test_proxy_lines_and_a_longer_since(project, run, store_stack):
    code, out, _ = run(project.cli("logs", "store", "--proxy", "--since", "3h"))
    assert code == 0
    assert [line.split(" ", 3)[3] for line in out.splitlines()] == ["[envoy] ready"]
    code, out, _ = run(project.cli("logs", "store", "--since", "3h"))
    assert "two hours ago" in out.splitlines()[0]


def test_follow_prints_new_lines_once(boto, store_stack):
    out = io.StringIO()
    appended = []

    def sleep(_seconds):
        if not appended:
            store_stack.put_log_events(
                logGroupName=GROUP, logStreamName="app/app/fedcba98765432100",
                logEvents=[{"timestamp": int(time.time() * 1000), "message": "late line"}])
            appended.append(True)

    printed = logs.tail(store_stack, GROUP, logs.APP_STREAMS, 600, out, follow=True,
                        sleep=sleep, rounds=3)

    text = out.getvalue()
    assert printed == 4 and text.count("late line") == 1
    assert text.count("worker booted") == 1  # not printed again by later polls


@pytest.mark.parametrize("argv, words", [
    (("logs", "nosuch"), "nosuch: not a service of"),
    (("logs", "store", "--since", "ten minutes"), "--since 'ten minutes'"),
    (("logs", "store", "--since", "0m"), "--since '0m'"),
])
def test_bad_input_is_one_line_and_exit_2(project, run, argv, words):
    code, out, err = run(project.cli(*argv))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and words in err and err.count("\n") == 1


def test_a_service_not_deployed_is_one_line_and_exit_1(project, run):
    code, _, err = run(project.cli("logs", "cache"))
    assert code == 1
    assert "shop-cache" in err and "deploy the service first" in err and err.count("\n") == 1


def test_the_request_names_the_stream_prefix_and_start_time():
    """moto ignores logStreamNamePrefix, so botocore's Stubber checks what AWS is sent."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("logs", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.add_response("filter_log_events", {"events": [
        {"timestamp": 1_000_000, "logStreamName": "service-connect/envoy/abc",
         "message": "hello", "eventId": "1"}]},
        {"logGroupName": GROUP, "logStreamNamePrefix": "service-connect/",
         "startTime": 1_000_000 - 600_000})
    with stubber:
        out = io.StringIO()
        assert logs.tail(client, GROUP, logs.PROXY_STREAMS, 600, out, clock=lambda: 1000.0) == 1
    stubber.assert_no_pending_responses()
    assert out.getvalue().endswith(" abc          hello\n")


def test_a_missing_log_group_is_one_line_and_exit_1(project, run, boto):
    """The stack names a log group that is gone (deleted outside CloudFormation):
    FilterLogEvents answers ResourceNotFoundException
    (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html)."""
    template = {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {"LogGroupName": {"Value": GROUP}}}
    boto("cloudformation").create_stack(StackName="shop-store",
                                        TemplateBody=json.dumps(template))
    code, out, err = run(project.cli("logs", "store"))
    assert (code, out) == (1, "")
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert GROUP in err and "shop-store" in err and "does not exist" in err


def test_no_credentials_is_one_line_and_exit_2(project, run, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, out, err = run(project.cli("logs", "store"))
    assert (code, out) == (2, "")
    assert err.startswith("error: no AWS credentials found") and err.count("\n") == 1
