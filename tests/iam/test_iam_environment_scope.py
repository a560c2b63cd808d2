"""Issue 16, item 5: with `environments:`, the deploy role and the permissions boundary of
bootstrap.yaml reach each environment's app (`<app>-<env>`: its cluster, services, task
definitions, log groups, roles under /<app>-<env>/, resources tagged app=<app>-<env>, its
namespace's records, its secrets) and the shared pipeline's (`<app>-pipeline-...`, roles
under /<app>/), and nothing named after the project app alone or an app extending an
environment's name.

The same probes as test_iam_deploy_role_scope.py, test_iam_deploy_role_scoped.py and
test_iam_foreign_arns.py, on tests/environments' topology, resolved in the production
account. Both environments' names are allowed in every account: one bootstrap.yaml serves
them all, and the account is what separates them (generator.stacks.deployer's docstring).
Evaluator: test_iam_foreign_arns (explicit deny first; an identity policy and a boundary
must both allow, https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html).
"""
from __future__ import annotations

import pytest

from generator.stacks import bootstrap
from templates_iam import resolved, role_documents
from test_iam_environment_deployer import APP, BOUNDARY_ARN, PRODUCTION, REGION, VALUES
from test_iam_foreign_arns import Role, _decide, _statements

P = f"{REGION}:{PRODUCTION}"
STAGING, PRODUCTION_APP = f"{APP}-staging", f"{APP}-production"
WITH_BOUNDARY = {"iam:PermissionsBoundary": BOUNDARY_ARN}
RECORDS = "route53:ChangeResourceRecordSetsNormalizedRecordNames"


@pytest.fixture(scope="module")
def template(environments_templates) -> dict:
    return environments_templates["bootstrap.yaml"]


@pytest.fixture(scope="module")
def deploy_role(template) -> Role:
    return Role(_statements(resolved(role_documents(template, bootstrap.DEPLOY_ROLE), VALUES),
                            f"{APP}-bootstrap"), None)


@pytest.fixture(scope="module")
def boundary(template) -> list[dict]:
    return _statements([resolved(template["Resources"][bootstrap.PERMISSIONS_BOUNDARY][
        "Properties"]["PolicyDocument"], VALUES)], f"{APP}-bootstrap")


def _ecs(resource: str) -> str:
    return f"arn:aws:ecs:{P}:{resource}"


def _logs(group: str) -> str:
    return f"arn:aws:logs:{P}:log-group:{group}"


def _role(path: str, name: str) -> str:
    return f"arn:aws:iam::{PRODUCTION}:role/{path}/{name}"


# (probe, action, each environment's resource with its context, a resource of the project app
# alone or of an app extending an environment's name, with its context)
def _per_environment():
    for env in (STAGING, PRODUCTION_APP):
        cluster = f"{env}-cluster"
        yield from [
            ("ecs-service", "ecs:UpdateService", _ecs(f"service/{cluster}/web"), {}),
            ("ecs-cluster", "ecs:DeleteCluster", _ecs(f"cluster/{cluster}"), {}),
            ("task-definition", "ecs:RegisterTaskDefinition",
             _ecs(f"task-definition/{cluster}-web:3"), {}),
            ("log-group", "logs:DeleteLogGroup", _logs(f"/ecs/{cluster}/web"), {}),
            ("role", "iam:CreateRole", _role(env, f"{env}-web-TaskRole-0A1B"), WITH_BOUNDARY),
            ("pass-role", "iam:PassRole", _role(env, f"{env}-web-ExecutionRole-0A1B"),
             {"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
            ("security-group", "ec2:AuthorizeSecurityGroupIngress",
             f"arn:aws:ec2:{P}:security-group/sg-0a1b", {"aws:ResourceTag/app": env}),
            ("new-load-balancer", "elasticloadbalancing:CreateLoadBalancer",
             f"arn:aws:elasticloadbalancing:{P}:loadbalancer/app/x/0a1b",
             {"aws:RequestTag/app": env}),
            ("namespace", "servicediscovery:DeleteNamespace",
             f"arn:aws:servicediscovery:{P}:namespace/ns-0a1b", {"aws:ResourceTag/app": env}),
        ]


OWN = list(_per_environment()) + [
    ("records", "route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z0PRIVATE",
     {RECORDS: ["web.production.shop.internal", "web.staging.shop.internal"]}),
    ("pipeline-role", "iam:PutRolePolicy", _role(APP, f"{APP}-pipeline-BuildRole-0A1B"),
     WITH_BOUNDARY),
    ("pipeline-project", "codebuild:CreateProject",
     f"arn:aws:codebuild:{P}:project/{APP}-pipeline-build", {}),
]

FOREIGN = [
    # The project app's own names: no deployment has them once there are environments.
    ("project-cluster", "ecs:UpdateService", _ecs(f"service/{APP}-cluster/web"), {}),
    ("project-log-group", "logs:DeleteLogGroup", _logs(f"/ecs/{APP}-cluster/web"), {}),
    ("project-tag", "ec2:AuthorizeSecurityGroupIngress",
     f"arn:aws:ec2:{P}:security-group/sg-0a1b", {"aws:ResourceTag/app": APP}),
    ("project-namespace-record", "route53:ChangeResourceRecordSets",
     "arn:aws:route53:::hostedzone/Z0PRIVATE", {RECORDS: ["web.shop.internal"]}),
    # An app whose name extends an environment's.
    ("extending-cluster", "ecs:UpdateService",
     _ecs(f"service/{PRODUCTION_APP}-eu-cluster/web"), {}),
    ("extending-role-path", "iam:CreateRole",
     _role(f"{PRODUCTION_APP}-eu", f"{PRODUCTION_APP}-eu-web-TaskRole-0A1B"), WITH_BOUNDARY),
    ("extending-tag", "elasticloadbalancing:ModifyListener",
     f"arn:aws:elasticloadbalancing:{P}:listener/app/x/0a1b/2c3d",
     {"aws:ResourceTag/app": f"{PRODUCTION_APP}-eu"}),
    ("another-team", "ecs:UpdateService", _ecs("service/billing-cluster/api"), {}),
    # The environment deployer is the bootstrap stack's, not a role the stacks may touch.
    ("deployer-role", "iam:UpdateAssumeRolePolicy",
     _role(APP, f"{APP}-environment-deployer"), {}),
]


@pytest.mark.parametrize("probe", OWN, ids=[f"{p[0]}-{p[2].rsplit('/', 2)[-2]}" for p in OWN])
def test_the_deploy_role_reaches_every_environments_resources(deploy_role, probe):
    _, action, resource, context = probe
    assert deploy_role.decide(action, resource, context) == "allow"


@pytest.mark.parametrize("probe", FOREIGN, ids=[p[0] for p in FOREIGN])
def test_the_deploy_role_reaches_no_other_apps_resources(deploy_role, probe):
    _, action, resource, context = probe
    assert deploy_role.decide(action, resource, context) != "allow"


# What the roles of each environment's stacks do, inside the boundary, and what they may not.
BOUNDARY_OWN = [
    ("logs:PutLogEvents", _logs(f"/ecs/{env}-cluster/web:log-stream:app/app/0a1b"), {})
    for env in (STAGING, PRODUCTION_APP)
] + [
    ("secretsmanager:GetSecretValue",
     f"arn:aws:secretsmanager:{P}:secret:{env}/db-AbCdEf", {}) for env in (STAGING, PRODUCTION_APP)
] + [
    ("ssm:GetParameters", f"arn:aws:ssm:{P}:parameter/{env}/api-key", {})
    for env in (STAGING, PRODUCTION_APP)
] + [
    # An environment's cluster stack carries its app tag from its creation (the deployer's
    # tags): the boundary reaches it through its tag, not its name.
    ("cloudformation:ExecuteChangeSet",
     f"arn:aws:cloudformation:{P}:stack/{PRODUCTION_APP}-cluster/0a1b",
     {"aws:ResourceTag/app": PRODUCTION_APP}),
    ("cloudformation:UpdateStack", f"arn:aws:cloudformation:{P}:stack/{APP}-pipeline/0a1b", {}),
    ("cloudformation:ExecuteChangeSet",
     f"arn:aws:cloudformation:{P}:stack/{STAGING}-web/0a1b", {"aws:ResourceTag/app": STAGING}),
]

BOUNDARY_FOREIGN = [
    ("logs:PutLogEvents", _logs(f"/ecs/{APP}-cluster/web:log-stream:app/app/0a1b"), {}),
    ("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{P}:secret:{APP}/db-AbCdEf", {}),
    ("cloudformation:ExecuteChangeSet",
     f"arn:aws:cloudformation:{P}:stack/{APP}-cluster/0a1b", {}),
    ("cloudformation:ExecuteChangeSet",
     f"arn:aws:cloudformation:{P}:stack/{PRODUCTION_APP}-eu-web/0a1b",
     {"aws:ResourceTag/app": f"{PRODUCTION_APP}-eu"}),
    ("cloudformation:UpdateStack", f"arn:aws:cloudformation:{P}:stack/{APP}-bootstrap/0a1b",
     {"aws:ResourceTag/app": PRODUCTION_APP}),
]


# The boundary names the project's prefix with environments (its 6,144-character quota:
# generator.stacks.bootstrap._boundary_names), so an app extending an environment's name in
# the same account is within it for names; what keeps a task to its own secrets is its
# execution role's statement, which names each secret ARN exactly (test_iam_secrets.py).
RESIDUAL = [
    ("secretsmanager:GetSecretValue",
     f"arn:aws:secretsmanager:{P}:secret:{PRODUCTION_APP}-eu/db-AbCdEf", {}),
    ("logs:PutLogEvents", _logs(f"/ecs/{PRODUCTION_APP}-eu-cluster/web:log-stream:a/a/0"), {}),
]


@pytest.mark.parametrize("action, resource, context", RESIDUAL,
                         ids=[f"{a}-{r.rsplit(':', 1)[-1]}" for a, r, _ in RESIDUAL])
def test_the_boundarys_name_residual_is_what_the_readme_says(boundary, action, resource,
                                                             context):
    assert _decide(boundary, action, resource, context) == "allow"


@pytest.mark.parametrize("action, resource, context", BOUNDARY_OWN,
                         ids=[f"{a}-{r.rsplit(':', 1)[-1]}" for a, r, _ in BOUNDARY_OWN])
def test_the_boundary_allows_every_environments_resources(boundary, action, resource, context):
    assert _decide(boundary, action, resource, context) == "allow"


@pytest.mark.parametrize("action, resource, context", BOUNDARY_FOREIGN,
                         ids=[f"{a}-{r.rsplit(':', 1)[-1]}" for a, r, _ in BOUNDARY_FOREIGN])
def test_the_boundary_allows_no_other_apps_resources(boundary, action, resource, context):
    assert _decide(boundary, action, resource, context) != "allow"
