"""`verify` and `status` after a real deploy to moto. Service Connect's registrations in
Cloud Map are made by the test through moto's Cloud Map API (moto does not run Service
Connect); ECS rollout states moto cannot produce come from a Stubber."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from botocore.stub import Stubber

import generator.ops.aws as aws_module


def register_endpoints(boto, namespace: str, names: list[str], healthy: bool = True) -> None:
    """What Service Connect does when tasks start: one instance per discovery name."""
    discovery = boto("servicediscovery")
    discovery.create_http_namespace(Name=namespace)
    namespace_id = discovery.list_namespaces()["Namespaces"][0]["Id"]
    for name in names:
        service_id = discovery.create_service(Name=name, NamespaceId=namespace_id)["Service"]["Id"]
        discovery.register_instance(
            ServiceId=service_id, InstanceId=f"{name}-task-1",
            Attributes={"AWS_INSTANCE_IPV4": "10.0.1.10", "AWS_INSTANCE_PORT": "8080",
                        "AWS_INIT_HEALTH_STATUS": "HEALTHY" if healthy else "UNHEALTHY"})


@pytest.fixture
def deployed(project, run, boto):
    assert run(project.first_deploy_argv())[0] == 0
    return project


def test_verify_passes_when_everything_is_complete_running_and_registered(deployed, run, boto):
    register_endpoints(boto, "shop.local", ["store", "cache", "server", "client"])

    code, out, err = run(deployed.cli("verify"))

    assert (code, err) == (0, "")
    assert out.startswith("verify: OK: 4 service(s) in shop (us-east-1)")
    assert out.rstrip().endswith("no alarm in ALARM")


def test_verify_fails_on_an_alarm_in_alarm(deployed, run, boto):
    """A service that runs and registers can still fail its callers: an alarm in ALARM
    (a service's own, or an edge's) fails verify; one without data or not deployed does
    not."""
    register_endpoints(boto, "shop.local", ["store", "cache", "server", "client"])
    cloudwatch = boto("cloudwatch")
    for name, state in (("shop-client-to-server-5xx-rate", "ALARM"),
                        ("shop-store-latency", "INSUFFICIENT_DATA"),
                        ("shop-cache-5xx-rate", "OK")):
        cloudwatch.put_metric_alarm(
            AlarmName=name, Namespace="AWS/ECS", MetricName="RequestCount", Statistic="Sum",
            Period=60, EvaluationPeriods=1, Threshold=1,
            ComparisonOperator="GreaterThanThreshold")
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")

    code, out, _ = run(deployed.cli("verify"))

    assert code == 1
    assert out.startswith("verify: 1 problem(s) in shop (us-east-1)")
    (row,) = [line.split() for line in out.splitlines() if "alarm" in line.split()[1:2]]
    assert row == ["server", "alarm", "shop-client-to-server-5xx-rate:", "ALARM", "OK"]


def test_verify_fails_with_a_table_naming_the_missing_endpoint(deployed, run, boto):
    register_endpoints(boto, "shop.local", ["store", "cache", "server"])  # client missing

    code, out, _ = run(deployed.cli("verify"))

    assert code == 1
    assert out.splitlines()[0] == "verify: 1 problem(s) in shop (us-east-1)"
    assert out.splitlines()[3].split(None, 2)[:2] == ["client", "endpoint"]
    assert "http://client.shop.local:8080: not registered in Cloud Map" in out


def test_verify_wait_checks_again_until_the_late_endpoint_registers(deployed, run, boto):
    import threading

    register_endpoints(boto, "shop.local", ["store", "cache", "server"])
    discovery = boto("servicediscovery")
    namespace_id = discovery.list_namespaces()["Namespaces"][0]["Id"]

    def register_client_later():
        service_id = discovery.create_service(Name="client", NamespaceId=namespace_id)["Service"]["Id"]
        discovery.register_instance(ServiceId=service_id, InstanceId="client-task-1",
                                    Attributes={"AWS_INSTANCE_IPV4": "10.0.1.11"})

    late = threading.Timer(1.0, register_client_later)
    late.start()
    try:
        code, out, _ = run(deployed.cli("verify", "--wait", "1", "--poll-seconds", "0.2"))
    finally:
        late.join()

    assert code == 0, out
    assert out.startswith("verify: OK: 4 service(s)")


def ecs_service(name: str, running: int, desired: int, *rollouts: tuple[str, str]) -> dict:
    deployments = [{"id": f"ecs-svc/{i}", "status": "PRIMARY" if i == 0 else "ACTIVE",
                    "rolloutState": state, "rolloutStateReason": reason,
                    "createdAt": datetime(2026, 1, 1, tzinfo=timezone.utc)}
                   for i, (state, reason) in enumerate(rollouts)]
    return {"serviceName": name, "status": "ACTIVE", "runningCount": running,
            "desiredCount": desired, "deployments": deployments}


@pytest.fixture
def stubbed_ecs(monkeypatch):
    """ECS answers from a Stubber; every other client still goes to moto."""
    answers: list[dict] = []
    real_client = aws_module.Aws.client

    def client(self, service):
        made = real_client(self, service)
        if service == "ecs":
            stub = Stubber(made)
            for answer in answers:
                stub.add_response("describe_services", answer)
            stub.activate()
        return made

    monkeypatch.setattr(aws_module.Aws, "client", client)
    return answers


def test_verify_fails_on_unfinished_or_failed_rollouts(deployed, run, boto, stubbed_ecs):
    register_endpoints(boto, "shop.local", ["store", "cache", "server", "client"])
    stubbed_ecs.append({"services": [
        ecs_service("store", 1, 1, ("COMPLETED", "")),
        ecs_service("cache", 0, 1, ("IN_PROGRESS", "ECS deployment ecs-svc/0 in progress."),
                    ("COMPLETED", "")),
        ecs_service("server", 1, 1, ("FAILED", "ECS deployment circuit breaker: tasks "
                                               "failed to start.")),
        ecs_service("client", 1, 1, ("COMPLETED", "")),
    ]})

    code, out, _ = run(deployed.cli("verify"))

    assert code == 1
    rows = [line.split(None, 2) for line in out.splitlines()[3:]]
    assert [(r[0], r[1]) for r in rows] == [("cache", "tasks"), ("cache", "rollout"),
                                            ("server", "rollout")]
    assert "running 0 of 1" in out
    assert "IN_PROGRESS, 2 deployments: ECS deployment ecs-svc/0 in progress." in out
    assert "FAILED: ECS deployment circuit breaker: tasks failed to start." in out


def test_status_has_one_row_per_service(deployed, run, boto):
    register_endpoints(boto, "shop.local", ["store", "server"])

    code, out, _ = run(deployed.cli("status"))

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "shop in us-east-1: cluster stack shop-cluster CREATE_COMPLETE, namespace shop.local"
    assert lines[1].split() == ["SERVICE", "STACK", "TASKS", "ROLLOUT", "ENDPOINT", "HEALTHY",
                                "LAST", "EVENT"]
    # The stacks table ends at the first blank line; the alarms and rates follow it
    # (tests/ops/test_ops_status.py).
    table = lines[3:lines.index("", 3)] if "" in lines[3:] else lines[3:]
    rows = {line.split()[0]: line.split() for line in table}
    assert list(rows) == ["store", "cache", "server", "client"]
    assert rows["store"][1:6] == ["CREATE_COMPLETE", "1/1", "COMPLETED",
                                  "http://store.shop.local:8080", "1"]
    assert rows["cache"][5] == "0"
    assert rows["server"][1] == "UPDATE_COMPLETE"  # the nonce follow-up
    assert rows["server"][-2:] == ["shop-server", "UPDATE_COMPLETE"]
