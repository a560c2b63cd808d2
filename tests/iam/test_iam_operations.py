"""The CodeBuild steps' roles against the boto3 operations their commands call: declared
(generator.awsfacts.operations), found in the code, and recorded while running."""
from __future__ import annotations

import re
from pathlib import Path

import boto3
import botocore.session
import pytest

from templates_iam import role_documents
from generator.awsfacts import operations, permissions
from recording import BotoCallRecorder

DEPLOY_MODULES = ("generator/ops/deploy.py", "generator/ops/stackflow.py",
                  "generator/ops/stackevents.py", "generator/ops/scheduler.py",
                  "generator/ops/preflight.py", "generator/ops/bake.py")
VERIFY_MODULES = ("generator/ops/inspect.py", "generator/ops/stackflow.py",
                  "generator/ops/stackevents.py", "generator/ops/health.py")


def _client_methods(client_name: str) -> dict[str, str]:
    """snake_case method -> OperationName, from botocore's service model."""
    model = botocore.session.get_session().get_service_model(client_name)
    return {botocore.xform_name(name): name for name in model.operation_names}


@pytest.mark.parametrize("declared", [operations.DEPLOY_OPERATIONS,
                                      operations.DEPLOY_TLS_OPERATIONS,
                                      operations.VERIFY_OPERATIONS,
                                      operations.DEPLOY_UNNAMED_OPERATIONS,
                                      operations.VERIFY_UNNAMED_OPERATIONS])
def test_declared_operations_exist_in_botocore(declared):
    for operation in declared:
        client, _, name = operation.partition(".")
        assert name in _client_methods(client).values(), operation


def test_unnamed_operations_are_declared_ones():
    assert operations.DEPLOY_UNNAMED_OPERATIONS <= operations.DEPLOY_OPERATIONS
    assert operations.VERIFY_UNNAMED_OPERATIONS <= operations.VERIFY_OPERATIONS


def test_operation_names_map_to_iam_actions():
    assert operations.iam_action("cloudformation.CreateChangeSet") == "cloudformation:CreateChangeSet"
    assert operations.iam_action("elbv2.DescribeLoadBalancers") == \
        "elasticloadbalancing:DescribeLoadBalancers"
    assert operations.iam_action("s3.HeadObject") == "s3:GetObject"
    assert operations.iam_action("sts.GetCallerIdentity") is None
    for declared in (operations.DEPLOY_OPERATIONS, operations.DEPLOY_TLS_OPERATIONS,
                     operations.VERIFY_OPERATIONS):
        for action in operations.iam_actions(declared):
            assert permissions.is_iam_action(action), action


def _called_operations(repo_root: Path, modules, clients) -> set[str]:
    """Every `<something>.<client method>(` in the modules, as <client>.<Operation>."""
    source = "\n".join((repo_root / m).read_text() for m in modules)
    calls = set(re.findall(r"\.([a-z][a-z0-9_]*)\(", source))
    calls |= set(re.findall(r"get_paginator\(\"([a-z0-9_]+)\"\)", source))
    found = set()
    for client in clients:
        for method, operation in _client_methods(client).items():
            if method in calls:
                found.add(f"{client}.{operation}")
    return found


def test_the_deploy_code_calls_only_declared_operations(repo_root):
    called = _called_operations(repo_root, DEPLOY_MODULES,
                                ("cloudformation", "ecs", "s3", "acm-pca", "cloudwatch"))
    assert called, "no boto3 call found: the scan is broken"
    # Paginated calls too (the scheduler's ListStacks, the preflight's DescribeStacks).
    assert {"cloudformation.ListStacks", "cloudformation.DescribeStacks"} <= called
    assert "cloudwatch.DescribeAlarms" in called  # the bake's
    declared = operations.DEPLOY_OPERATIONS | operations.DEPLOY_TLS_OPERATIONS
    assert called <= declared, called - declared


def test_the_verify_code_calls_only_declared_operations(repo_root):
    called = _called_operations(repo_root, VERIFY_MODULES,
                                ("cloudformation", "ecs", "servicediscovery", "cloudwatch"))
    # status's reads (generator.ops.health) are found, so the scan covers them.
    assert {"cloudwatch.DescribeAlarms", "cloudwatch.GetMetricData"} <= called
    # stackflow.py also holds the deploy's change-set calls; verify uses current_stack only.
    called -= {"cloudformation." + n for n in ("CreateChangeSet", "DeleteChangeSet",
                                               "DeleteStack", "DescribeChangeSet",
                                               "ExecuteChangeSet")}
    assert called <= operations.VERIFY_OPERATIONS, called - operations.VERIFY_OPERATIONS


@pytest.mark.parametrize("role, declared", [
    ("DeployStepRole", operations.DEPLOY_OPERATIONS),
    ("VerifyRole", operations.VERIFY_OPERATIONS),
])
def test_the_step_roles_allow_every_declared_operation(default_templates, role, declared):
    documents = role_documents(default_templates["pipeline.yaml"], role)
    for action in operations.iam_actions(declared):
        assert permissions.allows(documents, action), f"{role}: {action}"


def test_with_service_connect_tls_the_deploy_step_reads_that_ca_only(default_topology):
    """DEPLOY_TLS_OPERATIONS are allowed on the topology's CA, and only with TLS."""
    import dataclasses

    from generator.topology import ServiceConnectTls
    from pipeline import iam as pipeline_iam

    ca = ("arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/"
          "0f3c1d2e-1111-2222-3333-444455556666")
    tls = dataclasses.replace(default_topology, service_connect_tls=ServiceConnectTls(ca))
    actions = sorted(operations.iam_actions(operations.DEPLOY_TLS_OPERATIONS))
    assert actions == ["acm-pca:DescribeCertificateAuthority", "acm-pca:ListTags"]

    def reading(topology):
        role = pipeline_iam.deploy_step_role(topology).to_dict()["Properties"]
        return [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]
                if "acm-pca" in str(s["Action"])]

    assert reading(tls) == [{"Effect": "Allow", "Action": actions, "Resource": [ca]}]
    assert reading(default_topology) == []


def test_the_deploy_step_passes_only_the_deploy_role_to_cloudformation(default_templates,
                                                                      default_topology):
    documents = role_documents(default_templates["pipeline.yaml"], "DeployStepRole")
    (statement,) = [s for d in documents for s in permissions.statements(d)
                    if "iam:PassRole" in s["Action"]]
    assert statement["Resource"] == [
        {"Fn::ImportValue": f"{default_topology.app}-bootstrap-DeployRoleArn"}]
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}


def test_the_deploy_step_never_changes_the_bootstrap_or_pipeline_stack(default_templates,
                                                                      default_topology):
    documents = role_documents(default_templates["pipeline.yaml"], "DeployStepRole")
    (deny,) = [s for d in documents for s in permissions.statements(d) if s["Effect"] == "Deny"]
    assert {"cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet",
            "cloudformation:DeleteStack"} <= set(deny["Action"])
    resources = str(deny["Resource"])
    assert f"stack/{default_topology.app}-bootstrap/*" in resources
    assert f"stack/{default_topology.app}-pipeline/*" in resources


# --- recorded calls ------------------------------------------------------------------------

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


CLUSTER_STACK = """\
Resources:
  Cluster:
    Type: AWS::ECS::Cluster
    Properties: {ClusterName: demo-cluster}
Outputs:
  ClusterName:
    Value: !Ref Cluster
"""


def test_the_recorder_sees_clients_of_any_session_made_while_recording(moto_env):
    before = boto3.client("sts")
    with BotoCallRecorder().recording() as recorder:
        before.get_caller_identity()  # made before recording: not hooked
        boto3.Session().client("cloudformation").describe_stacks()
        boto3.client("ecs").list_clusters()
    assert recorder.calls == ["cloudformation.DescribeStacks", "ecs.ListClusters"]


def test_verify_calls_only_the_verify_operations(moto_env, default_topology):
    from generator.ops import inspect

    session = boto3.Session()
    session.client("cloudformation").create_stack(StackName="demo-cluster",
                                                  TemplateBody=CLUSTER_STACK)
    session.client("ecs").create_service(cluster="demo-cluster", serviceName="server",
                                         desiredCount=1)
    with BotoCallRecorder().recording() as recorder:
        session = boto3.Session()
        _, states = inspect.gather(session.client("cloudformation"), session.client("ecs"),
                                   session.client("servicediscovery"), default_topology)
    assert states
    print("verify called:", sorted(recorder.operations))
    assert {"cloudformation.DescribeStacks", "ecs.DescribeServices",
            "servicediscovery.DiscoverInstances"} <= recorder.operations
    assert recorder.operations <= operations.VERIFY_OPERATIONS
