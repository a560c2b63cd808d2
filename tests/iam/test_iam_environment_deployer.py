"""Issue 16, item 5 (acceptance, IAM): the environment deployer role of bootstrap.yaml, as the
production account's bootstrap stack creates it (tests/environments' topology: pipeline and
staging in 111111111111, production in 222222222222, `bootstrap --env production --trust
111111111111`).

(a) Who may assume it: its trust policy evaluated for sts:AssumeRole. A Principal naming
an account's root lets that account's principals in, as far as the conditions allow
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html);
aws:PrincipalArn is the role's ARN for a role session
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn).
Only the pipeline account's deploy step role passes; another role of that account, a
user, its root, the same name in a third account or under another path are refused.

(b) What it may do: its policy and the boundary it carries, evaluated together
(test_iam_foreign_arns' evaluator: explicit deny first, both must allow,
https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html). Its
actions are the deploy step's declared operations (generator.awsfacts.operations), none
beyond what the deploy step role has in its own account; no ARN names another account.
What separates staging from production is the account (generator.stacks.deployer's
docstring): these tests check what holds given that.
"""
from __future__ import annotations

import re

import pytest

from generator import names
from generator.awsfacts import operations
from generator.stacks import bootstrap, deployer
from pipeline.iam import DEPLOY_STEP_ROLE
from templates_iam import resolved, role_documents
from test_iam_first_runs import _listed, _matches
from test_iam_foreign_arns import Role, _applies, _statements

PIPELINE, PRODUCTION, THIRD = "111111111111", "222222222222", "333333333333"
REGION, APP = "eu-west-1", "shop"
P = f"{REGION}:{PRODUCTION}"
BOUNDARY_ARN = f"arn:aws:iam::{PRODUCTION}:policy/{APP}-permissions-boundary-0a1b2c3d"
DEPLOY_ROLE_ARN = f"arn:aws:iam::{PRODUCTION}:role/{APP}-bootstrap-CloudFormationDeployRole-1A2B"
DEPLOYER_ARN = names.environment_deployer_role_arn(APP, PRODUCTION)
TEMPLATE_BUCKET = f"{APP}-bootstrap-templatebucket-1a2b3c"
# Values the production account's bootstrap stack resolves its intrinsics to.
VALUES = {
    "AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": PRODUCTION,
    "AWS::StackName": f"{APP}-bootstrap", deployer.TRUSTED_ACCOUNT: PIPELINE,
    bootstrap.PERMISSIONS_BOUNDARY: BOUNDARY_ARN,
    f"{bootstrap.DEPLOY_ROLE}.Arn": DEPLOY_ROLE_ARN,
    f"{deployer.DEPLOYER_ROLE}.Arn": DEPLOYER_ARN,
    bootstrap.TEMPLATE_BUCKET: TEMPLATE_BUCKET,
    f"{bootstrap.TEMPLATE_BUCKET}.Arn": f"arn:aws:s3:::{TEMPLATE_BUCKET}",
}
DEPLOY_STEP = f"arn:aws:iam::{PIPELINE}:role/{APP}/{APP}-pipeline-{DEPLOY_STEP_ROLE}-AbC123dEf456"


@pytest.fixture(scope="module")
def template(environments_templates) -> dict:
    return environments_templates["bootstrap.yaml"]


@pytest.fixture(scope="module")
def role_resource(template) -> dict:
    return resolved(template["Resources"][deployer.DEPLOYER_ROLE], VALUES)


def evaluated(template: dict, logical_id: str) -> Role:
    """A role of the production account's bootstrap stack, with its boundary if it has one."""
    stack = f"{APP}-bootstrap"
    identity = _statements(resolved(role_documents(template, logical_id), VALUES), stack)
    carried = template["Resources"][logical_id]["Properties"].get("PermissionsBoundary")
    if carried is None:
        return Role(identity, None)
    assert carried == {"Ref": bootstrap.PERMISSIONS_BOUNDARY}
    boundary = _statements([resolved(template["Resources"][bootstrap.PERMISSIONS_BOUNDARY][
        "Properties"]["PolicyDocument"], VALUES)], stack)
    return Role(identity, boundary)


@pytest.fixture(scope="module")
def deployer_role(template) -> Role:
    return evaluated(template, deployer.DEPLOYER_ROLE)


# --- (a) the trust policy -------------------------------------------------------------------


def may_assume(role_resource: dict, principal_arn: str) -> bool:
    """sts:AssumeRole of this role by `principal_arn`, as its trust policy decides it."""
    account = principal_arn.split(":")[4]
    allowed = False
    for statement in role_resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
        principals = _listed(statement["Principal"]["AWS"])
        named = any(p == principal_arn or p == f"arn:aws:iam::{account}:root"
                    for p in principals)
        applies = named and _applies({**statement, "Resource": "*", "_stack": ""},
                                     "sts:AssumeRole", DEPLOYER_ARN,
                                     {"aws:PrincipalArn": principal_arn})
        if applies and statement["Effect"] == "Deny":
            return False
        allowed = allowed or applies
    return allowed


def test_the_pipeline_accounts_deploy_step_may_assume_it(role_resource):
    assert may_assume(role_resource, DEPLOY_STEP)


@pytest.mark.parametrize("principal", [
    f"arn:aws:iam::{PIPELINE}:role/{APP}/{APP}-pipeline-BuildRole-AbC123",
    f"arn:aws:iam::{PIPELINE}:role/{APP}/{APP}-pipeline-VerifyRole-AbC123",
    f"arn:aws:iam::{PIPELINE}:role/{APP}/{APP}-pipeline-PipelineRole-AbC123",
    f"arn:aws:iam::{PIPELINE}:user/admin",
    f"arn:aws:iam::{PIPELINE}:root",
    # The right name outside the pipeline's role path: anyone with iam:CreateRole could
    # make it.
    f"arn:aws:iam::{PIPELINE}:role/{APP}-pipeline-{DEPLOY_STEP_ROLE}-AbC123",
    # Another app whose name extends this one's, in the pipeline account.
    f"arn:aws:iam::{PIPELINE}:role/{APP}-prod/{APP}-prod-pipeline-{DEPLOY_STEP_ROLE}-AbC123",
    # The same role in a third account, and in the production account itself.
    f"arn:aws:iam::{THIRD}:role/{APP}/{APP}-pipeline-{DEPLOY_STEP_ROLE}-AbC123",
    f"arn:aws:iam::{PRODUCTION}:role/{APP}/{APP}-pipeline-{DEPLOY_STEP_ROLE}-AbC123",
], ids=lambda arn: arn.split(":", 4)[4])
def test_no_other_principal_may_assume_it(role_resource, principal):
    assert not may_assume(role_resource, principal)


def test_it_exists_only_when_trusted_account_is_set(template):
    parameter = template["Parameters"][deployer.TRUSTED_ACCOUNT]
    assert parameter["Default"] == ""
    pattern = parameter["AllowedPattern"]
    # CloudFormation matches the whole value.
    assert [re.fullmatch(pattern, v) is not None
            for v in ("", PIPELINE, "11111111111", "1111111111111", "*", "12345678901a")] == \
        [True, True, False, False, False, False]
    assert template["Resources"][deployer.DEPLOYER_ROLE]["Condition"] == \
        deployer.HAS_TRUSTED_ACCOUNT
    assert template["Conditions"][deployer.HAS_TRUSTED_ACCOUNT] == \
        {"Fn::Not": [{"Fn::Equals": [{"Ref": deployer.TRUSTED_ACCOUNT}, ""]}]}
    assert template["Outputs"][deployer.DEPLOYER_ROLE_OUTPUT]["Condition"] == \
        deployer.HAS_TRUSTED_ACCOUNT


def test_its_name_and_path_are_the_contracts(role_resource):
    properties = role_resource["Properties"]
    assert f"arn:aws:iam::{PRODUCTION}:role{properties['Path']}{properties['RoleName']}" == \
        DEPLOYER_ARN
    assert properties["PermissionsBoundary"] == BOUNDARY_ARN


def test_the_default_topology_has_no_deployer(default_templates):
    boot = default_templates["bootstrap.yaml"]
    assert deployer.TRUSTED_ACCOUNT not in boot.get("Parameters", {})
    assert deployer.DEPLOYER_ROLE not in boot["Resources"]


# --- (b) what it may do ---------------------------------------------------------------------

TAGGED = {"aws:ResourceTag/app": f"{APP}-production"}
WEB_STACK = f"arn:aws:cloudformation:{P}:stack/{APP}-production-web/0a1b"
TO_CLOUDFORMATION = {"iam:PassedToService": "cloudformation.amazonaws.com"}

OWN = [
    ("cloudformation:DescribeStacks", "*", {}),
    ("cloudformation:ListStacks", "*", {}),
    ("cloudformation:CreateChangeSet", WEB_STACK, TAGGED),
    # A new stack: its change set brings the tag (the boundary's PipelineCreatesTheApps...).
    ("cloudformation:CreateChangeSet", WEB_STACK, {"aws:RequestTag/app": f"{APP}-production"}),
    ("cloudformation:ExecuteChangeSet",
     f"arn:aws:cloudformation:{P}:stack/{APP}-production-cluster/0a1b", TAGGED),
    ("cloudformation:DescribeStackEvents",
     f"arn:aws:cloudformation:{P}:stack/{APP}-production-orders-network/0a1b", {}),
    ("cloudformation:CreateChangeSet",
     f"arn:aws:cloudformation:{REGION}:aws:transform/LanguageExtensions", {}),
    ("ecs:DescribeServices", f"arn:aws:ecs:{P}:service/{APP}-production-cluster/web", {}),
    ("s3:PutObject", f"arn:aws:s3:::{TEMPLATE_BUCKET}/templates/service.yaml", {}),
    ("s3:GetObject", f"arn:aws:s3:::{TEMPLATE_BUCKET}/templates/service.yaml", {}),
    ("s3:DeleteObject", f"arn:aws:s3:::{TEMPLATE_BUCKET}/deployed/service.yaml", {}),
    ("s3:ListBucket", f"arn:aws:s3:::{TEMPLATE_BUCKET}", {}),
    ("iam:PassRole", DEPLOY_ROLE_ARN, TO_CLOUDFORMATION),
    # The environment's dashboards (generator.ops.dashboards): no Region in their ARN.
    ("cloudwatch:PutDashboard", f"arn:aws:cloudwatch::{PRODUCTION}:dashboard/{APP}-production",
     {}),
    ("cloudwatch:DeleteDashboards",
     f"arn:aws:cloudwatch::{PRODUCTION}:dashboard/{APP}-production_3", {}),
]


@pytest.mark.parametrize("action, resource, context", OWN,
                         ids=[f"{a}-{r.rsplit(':', 1)[-1]}" for a, r, _ in OWN])
def test_it_does_what_the_deploy_step_does(deployer_role, action, resource, context):
    assert deployer_role.decide(action, resource, context) == "allow"


FOREIGN = [
    ("bootstrap-stack", "cloudformation:ExecuteChangeSet",
     f"arn:aws:cloudformation:{P}:stack/{APP}-bootstrap/0a1b", TAGGED),
    ("bootstrap-stack-delete", "cloudformation:DeleteStack",
     f"arn:aws:cloudformation:{P}:stack/{APP}-bootstrap/0a1b", {"aws:ResourceTag/app": APP}),
    ("pipeline-stack", "cloudformation:CreateChangeSet",
     f"arn:aws:cloudformation:{P}:stack/{APP}-pipeline/0a1b", {"aws:ResourceTag/app": APP}),
    ("another-teams-stack", "cloudformation:ExecuteChangeSet",
     f"arn:aws:cloudformation:{P}:stack/billing-web/0a1b", {"aws:ResourceTag/app": "billing"}),
    # Its name starts like production's; its tag says whose it is.
    ("app-extending-the-environment", "cloudformation:ExecuteChangeSet",
     f"arn:aws:cloudformation:{P}:stack/{APP}-production-eu-web/0a1b",
     {"aws:ResourceTag/app": f"{APP}-production-eu"}),
    ("untagged-stack-of-the-environment", "cloudformation:DeleteStack",
     f"arn:aws:cloudformation:{P}:stack/{APP}-production-web/0a1b", {}),
    ("stack-in-the-pipeline-account", "cloudformation:ExecuteChangeSet",
     f"arn:aws:cloudformation:{REGION}:{PIPELINE}:stack/{APP}-staging-web/0a1b",
     {"aws:ResourceTag/app": f"{APP}-staging"}),
    ("pass-another-role", "iam:PassRole",
     f"arn:aws:iam::{PRODUCTION}:role/{APP}/{APP}-production-web-TaskRole-0A1B",
     TO_CLOUDFORMATION),
    ("pass-itself", "iam:PassRole", DEPLOYER_ARN, TO_CLOUDFORMATION),
    ("pass-the-deploy-role-elsewhere", "iam:PassRole", DEPLOY_ROLE_ARN,
     {"iam:PassedToService": "lambda.amazonaws.com"}),
    ("create-a-role", "iam:CreateRole", f"arn:aws:iam::{PRODUCTION}:role/{APP}/x",
     {"iam:PermissionsBoundary": BOUNDARY_ARN}),
    ("change-its-own-trust", "iam:UpdateAssumeRolePolicy", DEPLOYER_ARN, {}),
    ("assume-another-role", "sts:AssumeRole",
     f"arn:aws:iam::{PRODUCTION}:role/OrganizationAccountAccessRole", {}),
    ("another-bucket", "s3:PutObject", "arn:aws:s3:::billing-data/x.csv", {}),
    ("delete-an-uploaded-template", "s3:DeleteObject",
     f"arn:aws:s3:::{TEMPLATE_BUCKET}/templates/service.yaml", {}),
    ("another-cluster", "ecs:DescribeServices", f"arn:aws:ecs:{P}:service/billing-cluster/api",
     {}),
    ("update-a-service-directly", "ecs:UpdateService",
     f"arn:aws:ecs:{P}:service/{APP}-production-cluster/web", {}),
    ("another-teams-dashboard", "cloudwatch:PutDashboard",
     f"arn:aws:cloudwatch::{PRODUCTION}:dashboard/billing", {}),
    ("the-project-apps-dashboard", "cloudwatch:DeleteDashboards",
     f"arn:aws:cloudwatch::{PRODUCTION}:dashboard/{APP}", {}),
    ("dashboard-of-an-app-extending-the-environment", "cloudwatch:PutDashboard",
     f"arn:aws:cloudwatch::{PRODUCTION}:dashboard/{APP}-production-eu", {}),
]


@pytest.mark.parametrize("probe", FOREIGN, ids=[p[0] for p in FOREIGN])
def test_it_reaches_nothing_else(deployer_role, probe):
    _, action, resource, context = probe
    assert deployer_role.decide(action, resource, context) != "allow"


def _allowed_actions(documents: list[dict]) -> set[str]:
    return {action.lower() for document in documents for statement in document["Statement"]
            if statement["Effect"] == "Allow" for action in _listed(statement["Action"])}


def test_its_actions_are_the_deploy_steps_declared_operations(template):
    """Derived from the facts module: every IAM action of DEPLOY_OPERATIONS, and besides
    them only the deploy step's documented extras (PassRole, the transform, the baseline)."""
    granted = _allowed_actions(role_documents(template, deployer.DEPLOYER_ROLE))
    declared = {a.lower() for a in operations.iam_actions(operations.DEPLOY_OPERATIONS)}
    assert declared <= granted
    assert granted - declared == {"iam:passrole", "s3:deleteobject", "s3:listbucket"}


def test_it_grants_nothing_the_pipelines_deploy_step_role_lacks(environments_templates):
    """Never more in an environment's account than the deploy step has in its own
    (pipeline/iam.py deploy_step_role, rendered for the same topology)."""
    step = _allowed_actions(role_documents(environments_templates["pipeline.yaml"],
                                           DEPLOY_STEP_ROLE))
    granted = _allowed_actions(role_documents(environments_templates["bootstrap.yaml"],
                                              deployer.DEPLOYER_ROLE))
    assert granted <= step, sorted(granted - step)


# --- no ARN of another account ---------------------------------------------------------------


# The boundary's one grant across accounts: the pipeline's roles assume the environment
# roles of the topology's accounts (bootstrap._promotion_statements).
ACROSS = "AssumeEnvironmentRoles"


def _statements_of(template: dict) -> list[dict]:
    found = []
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        documents = [properties.get("PolicyDocument")] + [
            p["PolicyDocument"] for p in properties.get("Policies", [])]
        for document in filter(None, documents):
            found += document["Statement"]
    return found


def _resources(template: dict) -> list:
    return [resource for statement in _statements_of(template)
            if statement.get("Sid") != ACROSS
            for resource in _listed(statement.get("Resource", []))]


def test_the_only_grant_across_accounts_is_assuming_the_environment_roles(template):
    (across,) = [s for s in _statements_of(template) if s.get("Sid") == ACROSS]
    assert across["Action"] == "sts:AssumeRole" or across["Action"] == ["sts:AssumeRole"]
    # One pattern for every account (the boundary's size quota); the pipeline roles' own
    # policies name each environment account's roles exactly (tests/pipeline).
    arns = sorted(r["Fn::Sub"] for r in _listed(across["Resource"]))
    assert arns == [f"arn:${{AWS::Partition}}:iam::*:role/{APP}/{APP}-environment-*"]
    from fnmatch import fnmatchcase

    for kind in ("deployer", "reader"):
        assert fnmatchcase(f"arn:aws:iam::{PRODUCTION}:role/{APP}/{APP}-environment-{kind}",
                           arns[0].replace("${AWS::Partition}", "aws"))
    assert not fnmatchcase(f"arn:aws:iam::{PRODUCTION}:role/{APP}/{APP}-admin",
                           arns[0].replace("${AWS::Partition}", "aws"))


def test_no_statement_of_the_bootstrap_template_names_another_account(template):
    """Every ARN a policy of bootstrap.yaml names is in the account it is created in
    (${AWS::AccountId}), in none (S3 buckets), or AWS's own (a transform): one template in
    every account, and none of its grants reaches across. The deployer role's only mention
    of another account is its trust policy's principal."""
    resources = _resources(template)
    assert len(resources) > 50
    strings = [r["Fn::Sub"] for r in resources if isinstance(r, dict) and "Fn::Sub" in r]
    strings += [r for r in resources if isinstance(r, str)]
    for arn in strings:
        if arn == "*":
            continue
        if arn.startswith("${"):  # ${TemplateBucket.Arn}/...: this stack's bucket
            assert arn.split("}", 1)[0] == "${%s.Arn" % bootstrap.TEMPLATE_BUCKET, arn
            continue
        # Placeholders without their colons, so the ARN splits into its fields.
        fields = re.sub(r"\$\{([^}]*)\}", lambda m: "${%s}" % m.group(1).replace(":", "."),
                        arn).split(":")
        assert fields[4] in ("${AWS..AccountId}", "", "aws"), arn
    others = [r for r in resources if isinstance(r, dict) and "Fn::Sub" not in r]
    assert all(set(r) <= {"Ref", "Fn::GetAtt"} for r in others), others


def test_resolved_in_production_no_resource_is_another_accounts(template, role_resource):
    for statement in role_resource["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]:
        for arn in _listed(statement["Resource"]):
            assert arn == "*" or arn.split(":")[4] in (PRODUCTION, "", "aws"), arn
    trust = role_resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"]["AWS"] for s in trust] == [f"arn:aws:iam::{PIPELINE}:root"]


def test_the_deploy_role_may_not_change_the_deployer(template):
    """It sits under /<app>/, inside the deploy role's AppRoles scope: an explicit deny
    keeps CloudFormation (as the deploy role) from rewriting its trust or policies."""
    stack = f"{APP}-bootstrap"
    deploy_role = Role(_statements(resolved(role_documents(template, bootstrap.DEPLOY_ROLE),
                                            VALUES), stack), None)
    for action in ("iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:DeleteRole",
                   "iam:AttachRolePolicy"):
        assert deploy_role.decide(action, DEPLOYER_ARN,
                                  {"iam:PermissionsBoundary": BOUNDARY_ARN}) == "deny", action
    # While a role of an environment's stack stays in reach.
    assert deploy_role.decide(
        "iam:UpdateAssumeRolePolicy",
        f"arn:aws:iam::{PRODUCTION}:role/{APP}-production/{APP}-production-web-TaskRole-0A1B",
        {}) == "allow"


def test_the_trusted_pattern_follows_the_pipeline_stack(environments_topology):
    assert _matches(resolved(deployer.trusted_principal_pattern(environments_topology).to_dict(),
                             VALUES), DEPLOY_STEP)


def test_an_app_too_long_for_the_deployer_role_name_is_refused_at_generate(tmp_path, capsys):
    """IAM role names have at most 64 characters (reference_iam-quotas.html): a RoleName
    over it would fail the bootstrap stack in the account, long after generate."""
    from environments.conftest import TWO_ENVIRONMENTS

    from generator import cli

    longest = "a" * (deployer.ROLE_NAME_CHARS - len(names.environment_deployer_role("")))
    path = tmp_path / "long" / "topology.yaml"
    path.parent.mkdir()
    path.write_text(TWO_ENVIRONMENTS.replace("app: shop", f"app: {longest}b"), encoding="utf-8")
    assert cli.main(["generate", "--topology", str(path), "--out",
                     str(tmp_path / "long" / "templates")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: app: "), err
    assert "environment role" in err and "64" in err
    # At the role names' limit, the app's name is repeated in the permissions boundary
    # often enough to reach its own limit (6,144 characters): refused in one line too.
    path = tmp_path / "limit" / "topology.yaml"
    path.parent.mkdir()
    path.write_text(TWO_ENVIRONMENTS.replace("app: shop", f"app: {longest}"), encoding="utf-8")
    assert cli.main(["generate", "--topology", str(path), "--out",
                     str(tmp_path / "limit" / "templates")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "permissions boundary would have" in err, err


def _environments(count: int) -> str:
    from environments.conftest import TWO_ENVIRONMENTS

    text = TWO_ENVIRONMENTS.split("environments:")[0] + "environments:\n"
    for number in range(count):
        text += (f"  env{number}:\n    account: \"{PRODUCTION}\"\n    region: {REGION}\n"
                 "    network: {vpc_id: vpc-0a1b2c3d, private_subnets: [subnet-0a0a0a0a],\n"
                 "              public_subnets: [subnet-0c0c0c0c, subnet-0d0d0d0d]}\n")
    return text


def test_a_bootstrap_template_over_the_inline_limit_is_refused_at_generate(tmp_path, capsys):
    """CreateStack takes at most 51,200 bytes inline
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html),
    and a new account has no bucket to upload to before its bootstrap stack exists."""
    from generator import cli

    sizes = {}
    for count in (2, 10):
        path = tmp_path / str(count) / "topology.yaml"
        path.parent.mkdir()
        path.write_text(_environments(count), encoding="utf-8")
        sizes[count] = cli.main(["generate", "--topology", str(path), "--out",
                                 str(tmp_path / str(count) / "templates")])
        if sizes[count] == 0:
            assert len((tmp_path / str(count) / "templates" / "bootstrap.yaml").read_bytes()) \
                <= 51_200
    assert sizes == {2: 0, 10: 2}
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "over CloudFormation's 51,200-byte TemplateBody" in err


def test_neither_the_boundary_nor_the_deployer_manages_iam(template):
    """issue 8's no-escalation holds with environments: no IAM management in the boundary
    (every environment's roles carry it) nor in the deployer's own policy."""
    from test_iam_no_escalation import IAM_MANAGEMENT

    boundary = _allowed_actions([template["Resources"][bootstrap.PERMISSIONS_BOUNDARY][
        "Properties"]["PolicyDocument"]])
    granted = _allowed_actions(role_documents(template, deployer.DEPLOYER_ROLE))
    for action in IAM_MANAGEMENT:
        assert not any(_matches(g, action.lower()) for g in boundary | granted), action
    assert {a for a in granted if a.startswith("iam:")} == {"iam:passrole"}


# --- the reader role: the Build and Verify steps look, never change ---------------------

READER_ARN = names.environment_reader_role_arn(APP, PRODUCTION)


@pytest.fixture(scope="module")
def reader_resource(template) -> dict:
    return resolved(template["Resources"][deployer.READER_ROLE], VALUES)


@pytest.fixture(scope="module")
def reader_role(template) -> Role:
    return evaluated(template, deployer.READER_ROLE)


@pytest.mark.parametrize("step", ["BuildRole", "VerifyRole"])
def test_the_build_and_verify_steps_may_assume_the_reader(reader_resource, step):
    assert may_assume(reader_resource, f"arn:aws:iam::{PIPELINE}:role/{APP}/{APP}-pipeline-"
                                       f"{step}-AbC123")


@pytest.mark.parametrize("principal", [
    DEPLOY_STEP.replace(DEPLOY_STEP_ROLE, "PipelineRole"),
    f"arn:aws:iam::{PIPELINE}:user/admin",
    f"arn:aws:iam::{PIPELINE}:role/{APP}-pipeline-BuildRole-AbC123",  # outside /shop/
    f"arn:aws:iam::{THIRD}:role/{APP}/{APP}-pipeline-BuildRole-AbC123",
], ids=lambda arn: arn.split(":", 4)[4])
def test_no_one_else_may_assume_the_reader(reader_resource, principal):
    assert not may_assume(reader_resource, principal)


def test_the_reader_reads_the_environments_and_changes_nothing(reader_role, reader_resource):
    stack = f"arn:aws:cloudformation:{REGION}:{PRODUCTION}:stack/{APP}-production-cluster/1"
    service = f"arn:aws:ecs:{REGION}:{PRODUCTION}:service/{APP}-production-cluster/web"
    assert reader_role.decide("cloudformation:DescribeStacks", stack, {}) == "allow"
    assert reader_role.decide("ecs:DescribeServices", service, {}) == "allow"
    for action in ("cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet",
                   "cloudformation:DeleteStack", "cloudformation:UpdateStack"):
        assert reader_role.decide(action, stack, {}) != "allow", action
    # Every action it is granted is a read.
    actions = {a for s in reader_resource["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"] for a in _listed(s["Action"])}
    assert actions and all(a.split(":", 1)[1].startswith(("Describe", "Get", "List", "Discover"))
                           for a in actions), actions
