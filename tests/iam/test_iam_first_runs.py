"""Issue 14, findings 6-8: what blocks a first run or a rebuild.

- 6: connections created since 1 July 2024 have `codeconnections` ARNs, and a policy's
  service prefix must match the resource's
  (https://docs.aws.amazon.com/dtconsole/latest/userguide/rename.html).
- 7: an explicit deny overrides any allow
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html),
  so a deny by name prefix must not reach another stack's roles.
- 8: a retained resource outlives its stack; a recreated stack that gives the new one the
  same custom name fails with AlreadyExists
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html,
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-name.html).

The evaluator here is deliberately small (Allow/Deny, Action/Resource wildcards,
StringEquals); tests/iam's fuller evaluator is another helper's.
"""
from __future__ import annotations

import re
import textwrap

import pytest

from generator import render, topology as topology_module
from generator.stacks import bootstrap
from generator.upgrade import NAME_PROPERTIES

ACCOUNT, REGION, APP = "123456789012", "eu-west-1", "shop"
DEPLOY_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{APP}-bootstrap-CloudFormationDeployRole-1A2B3C"
BOUNDARY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/{APP}-permissions-boundary-0a1b2c3d"

TOPOLOGY = f"""\
app: {APP}
namespace: shop.local
services:
  bootstrap-api:
    port: 8080
  pipeline-worker:
    port: 8081
"""


def _resolve(value):
    """A Resource element of the generated bootstrap template, with this account's values."""
    if isinstance(value, str):
        return value
    if "Fn::Sub" in value:
        text = value["Fn::Sub"]
        for name, known in {"AWS::Partition": "aws", "AWS::AccountId": ACCOUNT,
                            "AWS::Region": REGION, "AWS::StackName": f"{APP}-bootstrap",
                            f"{bootstrap.TEMPLATE_BUCKET}.Arn": f"arn:aws:s3:::{APP}-bootstrap-bucket"}.items():
            text = text.replace("${%s}" % name, known)
        assert "${" not in text, text
        return text
    if value == {"Fn::GetAtt": [bootstrap.DEPLOY_ROLE, "Arn"]}:
        return DEPLOY_ROLE_ARN
    if value == {"Ref": bootstrap.PERMISSIONS_BOUNDARY}:
        return BOUNDARY_ARN
    if value == {"Fn::GetAtt": [bootstrap.TEMPLATE_BUCKET, "Arn"]}:
        return f"arn:aws:s3:::{APP}-bootstrap-bucket"
    raise AssertionError(f"unresolved {value}")


def _matches(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    """IAM's wildcards: * any run of characters, ? one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _applies(statement: dict, action: str, resource: str, context: dict) -> bool:
    if not any(_matches(a, action, case_sensitive=False) for a in _listed(statement["Action"])):
        return False
    if not any(_matches(_resolve(r), resource) for r in _listed(statement["Resource"])):
        return False
    for operator, keys in statement.get("Condition", {}).items():
        assert operator in ("StringEquals", "StringLike", "ForAllValues:StringLike",
                            "Null"), operator
        for key, wanted in keys.items():
            given = context.get(key)
            if operator == "Null":
                if (given is None) != (str(wanted).lower() == "true"):
                    return False
                continue
            if operator == "ForAllValues:StringLike":
                # Every value of a multivalued key must match (a missing key matches
                # vacuously, which is why such a key must always be present: it is for
                # ChangeResourceRecordSets, whose every request names records).
                if not all(any(_matches(_resolve(w), value) for w in _listed(wanted))
                           for value in (given or [])):
                    return False
                continue
            if given is None:
                return False  # a missing key does not match a String* operator
            if operator == "StringEquals" and given not in [_resolve(w) for w in _listed(wanted)]:
                return False
            if operator == "StringLike" and not any(
                    _matches(_resolve(w), given) for w in _listed(wanted)):
                return False
    return True


def decide(statements: list[dict], action: str, resource: str, context: dict) -> str:
    """"deny" (an explicit deny applies), "allow", or "implicit deny"."""
    applying = [s for s in statements if _applies(s, action, resource, context)]
    if any(s["Effect"] == "Deny" for s in applying):
        return "deny"
    return "allow" if applying else "implicit deny"


@pytest.fixture(scope="module")
def topology():
    return topology_module.parse(textwrap.dedent(TOPOLOGY), "topology.yaml")


@pytest.fixture(scope="module")
def deploy_statements(topology) -> list[dict]:
    template = render.bootstrap_template(topology).to_dict()
    return [statement for resource in template["Resources"].values()
            if resource["Type"] == "AWS::IAM::ManagedPolicy"
            and {"Ref": bootstrap.DEPLOY_ROLE} in resource["Properties"].get("Roles", [])
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("prefix", ["codestar-connections", "codeconnections"])
def test_the_deploy_role_passes_a_connection_of_either_prefix(deploy_statements, prefix):
    """Finding 6: the pipeline stack's create needs PassConnection on the connection, whose
    ARN has the prefix it was created with (dtconsole rename.html); on main only
    codestar-connections was allowed, so a post-July-2024 connection failed."""
    connection = f"arn:aws:{prefix}:{REGION}:{ACCOUNT}:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
    context = {f"{prefix}:PassedToService": "codepipeline.amazonaws.com"}
    assert decide(deploy_statements, f"{prefix}:PassConnection", connection, context) == "allow"
    # The condition still counts: passing it to another service is not allowed.
    other = {f"{prefix}:PassedToService": "codebuild.amazonaws.com"}
    assert decide(deploy_statements, f"{prefix}:PassConnection", connection, other) != "allow"
    # And only this account's connections (issue 15: the app's ceiling, not any account's).
    foreign = connection.replace(ACCOUNT, "210987654321")
    assert decide(deploy_statements, f"{prefix}:PassConnection", foreign, context) != "allow"


def test_every_connection_use_names_both_prefixes(repo_root):
    """Finding 6, wherever a connection is used: the pipeline role, the boundary, and the
    parameter's pattern accept both prefixes."""
    for path in ("templates/pipeline.yaml", "templates/bootstrap.yaml"):
        text = (repo_root / path).read_text()
        for action in ("UseConnection",):
            assert f"codestar-connections:{action}" in text and f"codeconnections:{action}" in text, path
    assert "(codestar-connections|codeconnections)" in (repo_root / "templates/pipeline.yaml").read_text()


@pytest.mark.parametrize("service", ["bootstrap-api", "pipeline-worker"])
def test_a_service_named_like_another_stack_keeps_its_roles(deploy_statements, service):
    """Finding 7: service bootstrap-api's stack <app>-bootstrap-api names its roles
    <app>-bootstrap-api-<logical id>-<suffix>; on main the Deny on role/<app>-bootstrap-*
    hit them, and an explicit deny beats the allow (IAM policy evaluation logic)."""
    role = f"arn:aws:iam::{ACCOUNT}:role/{APP}/{APP}-{service}-TaskRole-0A1B2C3D4E5F"
    create = {"iam:PermissionsBoundary": BOUNDARY_ARN}
    assert decide(deploy_statements, "iam:CreateRole", role, create) == "allow"
    assert decide(deploy_statements, "iam:PutRolePolicy", role, create) == "allow"
    assert decide(deploy_statements, "iam:DeleteRole", role, {}) == "allow"
    assert decide(deploy_statements, "iam:PassRole", role,
                  {"iam:PassedToService": "ecs-tasks.amazonaws.com"}) == "allow"


def test_the_deploy_role_still_cannot_change_itself(deploy_statements):
    """Finding 7's control: the exact-ARN deny still covers the deploy role and its policies."""
    for action in ("iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:DeleteRole",
                   "iam:UpdateAssumeRolePolicy"):
        assert decide(deploy_statements, action, DEPLOY_ROLE_ARN,
                      {"iam:PermissionsBoundary": BOUNDARY_ARN}) != "allow", action
    policy = f"arn:aws:iam::{ACCOUNT}:policy/{APP}-bootstrap-CloudFormationDeployPolicy1-XYZ"
    assert decide(deploy_statements, "iam:CreatePolicyVersion", policy, {}) == "deny"
    assert decide(deploy_statements, "iam:CreatePolicyVersion", BOUNDARY_ARN, {}) == "deny"


def _refers_to_stack_id(value) -> bool:
    if isinstance(value, dict):
        if value.get("Ref") == "AWS::StackId":
            return True
        return any(_refers_to_stack_id(v) for v in value.values())
    if isinstance(value, list):
        return any(_refers_to_stack_id(v) for v in value)
    return isinstance(value, str) and "${AWS::StackId}" in value


def _resources(resources: dict):
    """(logical id, resource), inside Fn::ForEach blocks too."""
    for logical_id, resource in resources.items():
        if isinstance(resource, list):  # Fn::ForEach::X: [identifier, collection, {...}]
            yield from _resources(resource[2])
        else:
            yield logical_id, resource


def test_no_retained_resource_has_a_name_a_recreated_stack_would_reuse(topology):
    """Finding 8: the README's delete-and-recreate paths (a VPC move: service, network and
    cluster stacks; the old layout: also the pipeline stack; a rebuilt bootstrap stack)
    recreate stacks under their old names. Every resource kept by DeletionPolicy Retain is
    still there, so its custom name, if any, must differ per stack instance (it includes a
    piece of AWS::StackId) or the recreate fails with AlreadyExists. On main the ECR
    repository <app>/service and the policy <app>-permissions-boundary were fixed."""
    retained = []
    for name, document in render.render_with_documents(topology)[1].items():
        for logical_id, resource in _resources(document["Resources"]):
            if "Retain" not in (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")):
                continue
            retained.append((name, logical_id))
            prop = NAME_PROPERTIES.get(resource["Type"])
            value = resource.get("Properties", {}).get(prop) if prop else None
            assert value is None or _refers_to_stack_id(value), (
                f"{name}: {logical_id} is retained with the fixed {prop} {value!r}")
    # The walk saw the retained resources it is about.
    assert ("pipeline.yaml", "ImageRepository") in retained
    assert ("bootstrap.yaml", bootstrap.PERMISSIONS_BOUNDARY) in retained


def test_the_service_stack_may_pull_from_every_pipeline_repository(repo_root):
    """Finding 8's consequence: a recreated pipeline stack has a new repository, and
    running tasks still pull from the retained one, so the pull scope covers both."""
    text = (repo_root / "templates/service.yaml").read_text()
    assert "repository/${AppName}/service-*" in text


@pytest.mark.parametrize("prefix", ["codestar-connections", "codeconnections"])
def test_bootstrap_reads_a_connection_with_its_own_prefix(prefix):
    """Finding 6 in `bootstrap`'s connection check: the client is the ARN's own service
    (on main always codestar-connections), and boto3 has a client of that name."""
    import boto3

    from generator.ops.bootstrap import connection_service

    arn = f"arn:aws:{prefix}:{REGION}:{ACCOUNT}:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
    assert connection_service(arn) == prefix
    assert prefix in boto3.Session().get_available_services()


def test_roles_of_an_app_whose_name_extends_this_ones_are_out_of_reach(deploy_statements):
    """Issue 15, path 8: role/<app>-* matched the roles of <app>-prod; every role of the
    app's stacks now has the path /<app>/, and the grants name role/<app>/*."""
    foreign = f"arn:aws:iam::{ACCOUNT}:role/{APP}-prod/{APP}-prod-web-TaskRole-0A1B2C3D"
    old_style = f"arn:aws:iam::{ACCOUNT}:role/{APP}-prod-web-TaskRole-0A1B2C3D"
    create = {"iam:PermissionsBoundary": BOUNDARY_ARN}
    for role in (foreign, old_style):
        for action in ("iam:UpdateAssumeRolePolicy", "iam:DeleteRole", "iam:TagRole"):
            assert decide(deploy_statements, action, role, {}) != "allow", (action, role)
        assert decide(deploy_statements, "iam:CreateRole", role, create) != "allow"
        assert decide(deploy_statements, "iam:PassRole", role,
                      {"iam:PassedToService": "ecs-tasks.amazonaws.com"}) != "allow"


def test_every_role_of_the_app_stacks_has_the_apps_path(repo_root):
    from tests.iam.templates_iam import load_template
    for name in ("cluster.yaml", "service.yaml", "pipeline.yaml"):
        template = load_template(repo_root / "templates" / name)
        roles = {logical: resource for logical, resource in template["Resources"].items()
                 if resource.get("Type") == "AWS::IAM::Role"}
        assert roles, name
        for logical, role in roles.items():
            path = role["Properties"].get("Path")
            assert path in ("/demo/", {"Fn::Sub": "/${AppName}/"}), (name, logical, path)
