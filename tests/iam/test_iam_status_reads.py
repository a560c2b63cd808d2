"""`status` reads the app's alarms and the Service Connect metrics (generator.ops.health):
the verify role, an environment's reader role and the boundary allow those reads on this
app's alarms only, GetMetricData on "*" (a metric is not an IAM resource: Service
Authorization Reference, Amazon CloudWatch,
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html;
the alarm ARN is arn:${Partition}:cloudwatch:${Region}:${Account}:alarm:${AlarmName}),
and what status calls is what is declared."""
from __future__ import annotations

import boto3
import pytest

from generator.awsfacts import operations
from recording import BotoCallRecorder
from templates_iam import resolved, role_documents
from test_iam_environment_deployer import (  # noqa: F401 (fixtures)
    APP, PIPELINE, PRODUCTION, REGION, reader_role, template)
from test_iam_first_runs import decide
from test_iam_foreign_arns import _statements

OWN = f"arn:aws:cloudwatch:{REGION}:{PRODUCTION}:alarm:{APP}-production-api-5xx-rate"
OTHER_APPS = f"arn:aws:cloudwatch:{REGION}:{PRODUCTION}:alarm:billing-api-5xx-rate"


def test_the_reader_role_reads_the_environments_alarms_only(reader_role):  # noqa: F811
    assert reader_role.decide("cloudwatch:DescribeAlarms", OWN, {}) == "allow"
    assert reader_role.decide("cloudwatch:DescribeAlarms", OTHER_APPS, {}) != "allow"
    assert reader_role.decide("cloudwatch:GetMetricData", "*", {}) == "allow"
    # Reads only.
    for action in ("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms",
                   "cloudwatch:SetAlarmState", "cloudwatch:PutDashboard"):
        assert reader_role.decide(action, OWN, {}) != "allow", action


def test_the_boundary_lets_them_through_for_this_app_only(template):  # noqa: F811
    from test_iam_environment_deployer import VALUES
    from generator.stacks import bootstrap

    boundary = _statements([resolved(template["Resources"][bootstrap.PERMISSIONS_BOUNDARY][
        "Properties"]["PolicyDocument"], VALUES)], f"{APP}-bootstrap")
    assert decide(boundary, "cloudwatch:DescribeAlarms", OWN, {}) == "allow"
    assert decide(boundary, "cloudwatch:DescribeAlarms", OTHER_APPS, {}) != "allow"
    assert decide(boundary, "cloudwatch:GetMetricData", "*", {}) == "allow"


def test_the_verify_role_reads_the_apps_alarms_only(environments_templates):
    """The pipeline account's VerifyRole (staging's alarms there, <app>-staging-...)."""
    values = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": PIPELINE}
    documents = role_documents(environments_templates["pipeline.yaml"], "VerifyRole")
    cloudwatch = [resolved(s, values) for d in documents for s in d["Statement"]
                  if "cloudwatch:" in str(s["Action"])]
    own = f"arn:aws:cloudwatch:{REGION}:{PIPELINE}:alarm:{APP}-staging-api-latency"
    other = f"arn:aws:cloudwatch:{REGION}:{PIPELINE}:alarm:billing-api-latency"
    assert decide(cloudwatch, "cloudwatch:DescribeAlarms", own, {}) == "allow"
    assert decide(cloudwatch, "cloudwatch:DescribeAlarms", other, {}) != "allow"
    assert decide(cloudwatch, "cloudwatch:GetMetricData", "*", {}) == "allow"


@pytest.fixture
def moto_env(monkeypatch):
    moto = pytest.importorskip("moto")
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        yield


def test_status_calls_only_the_verify_operations(moto_env, default_topology):
    from generator.ops import health

    with BotoCallRecorder().recording() as recorder:
        found = health.gather(boto3.Session().client("cloudwatch"), default_topology,
                              default_topology.cluster_stack_name)
    assert found.services
    assert recorder.operations == {"cloudwatch.DescribeAlarms", "cloudwatch.GetMetricData"}
    assert recorder.operations <= operations.VERIFY_OPERATIONS
