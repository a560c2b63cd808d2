"""Issue 15 item 1: the boundary is the app's ceiling, not the account's. Each pipeline
grant of the boundary reaches this app's resources only; on main each was Resource "*",
so a role inside shop's boundary could change another app's stacks, start its builds,
write its buckets, push to its repository and use any connection. Each closed path is
named by its statement. (Small evaluator of tests/iam/test_iam_first_runs.py; IAM
evaluation: an action is allowed when a statement's Action and Resource match,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html.)"""
from __future__ import annotations

import pytest

from generator import render
from generator.stacks import bootstrap
from test_iam_first_runs import ACCOUNT, APP, REGION, decide

OTHER = "billing"  # another app in the same account

# (statement Sid, action, this app's resource, another app's resource)
PATHS = [
    ("StackWrites", "cloudformation:UpdateStack",
     f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{APP}-cluster/0a1b",
     f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{OTHER}-cluster/0a1b"),
    ("StackWrites", "cloudformation:UpdateStack",
     f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{APP}-pipeline/0a1b",
     f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{APP}-prod-pipeline/0a1b"),
    ("Builds", "codebuild:StartBuild",
     f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{APP}-pipeline-deploy",
     f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{OTHER}-pipeline-deploy"),
    ("Buckets", "s3:PutObject",
     f"arn:aws:s3:::{APP}-pipeline-artifactbucket-1a2b3c/x.zip",
     f"arn:aws:s3:::{OTHER}-pipeline-artifactbucket-1a2b3c/x.zip"),
    ("Buckets", "s3:GetObject",
     f"arn:aws:s3:::{APP}-bootstrap-templatebucket-1a2b3c/deployed/templates/cluster.yaml",
     "arn:aws:s3:::someone-elses-bucket/secret.txt"),
    ("PushImages", "ecr:PutImage",
     f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{APP}/service-0a1b2c3d",
     f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{OTHER}/service-0a1b2c3d"),
    ("Connections", "codeconnections:UseConnection",
     f"arn:aws:codeconnections:{REGION}:{ACCOUNT}:connection/0a1b2c3d",
     f"arn:aws:codeconnections:{REGION}:210987654321:connection/0a1b2c3d"),
    # deploy's bake (issue 17): the app's alarms by name, not another app's.
    ("AlarmsDashboards", "cloudwatch:DescribeAlarms",
     f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{APP}-orders-5xx-rate",
     f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{OTHER}-orders-5xx-rate"),
    ("Connections", "codestar-connections:UseConnection",
     f"arn:aws:codestar-connections:{REGION}:{ACCOUNT}:connection/0a1b2c3d",
     f"arn:aws:codestar-connections:{REGION}:210987654321:connection/0a1b2c3d"),
]


@pytest.fixture(scope="module")
def boundary(topology) -> list[dict]:
    template = render.bootstrap_template(topology).to_dict()
    return template["Resources"][bootstrap.PERMISSIONS_BOUNDARY]["Properties"][
        "PolicyDocument"]["Statement"]


@pytest.fixture(scope="module")
def topology():
    from test_iam_first_runs import TOPOLOGY
    from generator import topology as topology_module

    return topology_module.parse(TOPOLOGY, "topology.yaml")


@pytest.mark.parametrize("sid, action, own, other", PATHS, ids=[f"{p[0]}-{p[1]}" for p in PATHS])
def test_the_boundary_reaches_this_apps_resources_only(boundary, sid, action, own, other):
    statement = next(s for s in boundary if s.get("Sid") == sid)
    assert decide([statement], action, own, {}) == "allow"
    assert decide(boundary, action, own, {}) == "allow"
    assert decide(boundary, action, other, {}) != "allow", f"{sid} still reaches {other}"


# What the pipeline's roles do, as concrete requests (pipeline.iam): still inside.
STILL_ALLOWED = [
    ("cloudformation:CreateChangeSet", f"arn:aws:cloudformation:{REGION}:aws:transform/LanguageExtensions"),
    ("cloudformation:UpdateStack", f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{APP}-pipeline/0a1b"),
    ("cloudformation:DescribeStacks", "*"),
    ("codebuild:BatchGetBuilds", f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{APP}-pipeline-build"),
    ("codebuild:CreateReport", f"arn:aws:codebuild:{REGION}:{ACCOUNT}:report-group/{APP}-pipeline-build-tests"),
    ("s3:ListBucket", f"arn:aws:s3:::{APP}-bootstrap-templatebucket-1a2b3c"),
    ("ecr:DescribeImages", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{APP}/service-0a1b2c3d"),
    ("ecr:GetAuthorizationToken", "*"),
]


@pytest.mark.parametrize("action, resource", STILL_ALLOWED)
def test_the_pipelines_own_requests_stay_inside(boundary, action, resource):
    assert decide(boundary, action, resource, {}) == "allow"


SERVICE_STACK = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{APP}-web/0a1b"
# An app whose name extends this one's: its stacks match the name prefix (issue 15, path 9).
LONGER_APPS_STACK = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{APP}-prod-web/0a1b"
OWN_TAG = {"aws:ResourceTag/app": APP}


@pytest.mark.parametrize("action, resource, context, decision", [
    # The app's service, network and ingress stacks, by their app tag.
    ("cloudformation:ExecuteChangeSet", SERVICE_STACK, OWN_TAG, "allow"),
    ("cloudformation:DeleteStack", SERVICE_STACK, OWN_TAG, "allow"),
    ("cloudformation:CreateChangeSet", SERVICE_STACK,
     {**OWN_TAG, "aws:RequestTag/app": APP}, "allow"),
    # A new one: no tags yet, its change set brings the app's.
    ("cloudformation:CreateChangeSet", SERVICE_STACK, {"aws:RequestTag/app": APP}, "allow"),
    ("cloudformation:CreateChangeSet", SERVICE_STACK, {}, "deny"),
    # Reads by name.
    ("cloudformation:DescribeStackEvents", SERVICE_STACK, {}, "allow"),
    # The longer-named app's stacks: refused, even with this app's tag in the request.
    ("cloudformation:ExecuteChangeSet", LONGER_APPS_STACK,
     {"aws:ResourceTag/app": f"{APP}-prod"}, "deny"),
    ("cloudformation:DeleteStack", LONGER_APPS_STACK,
     {"aws:ResourceTag/app": f"{APP}-prod"}, "deny"),
    ("cloudformation:CreateChangeSet", LONGER_APPS_STACK,
     {"aws:ResourceTag/app": f"{APP}-prod", "aws:RequestTag/app": APP}, "deny"),
])
def test_the_apps_other_stacks_are_reached_by_their_app_tag(boundary, action, resource,
                                                            context, decision):
    allowed = decide(boundary, action, resource, context) == "allow"
    assert allowed == (decision == "allow"), (action, resource, context)
