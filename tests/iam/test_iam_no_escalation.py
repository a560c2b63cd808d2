"""No escalation (issue 8): every role the app stacks create carries the project's
permissions boundary, the boundary holds what the roles need and no IAM role management,
and the deploy role may create or change roles only when they carry the boundary."""
from __future__ import annotations

import pytest

from templates_iam import role_documents, roles
from generator.awsfacts import permissions
from generator.stacks import bootstrap

DEPLOY_ROLE = bootstrap.DEPLOY_ROLE
BOUNDARY = bootstrap.PERMISSIONS_BOUNDARY

# What a role inside the boundary must never be able to do: make or widen a role, user
# or policy, or lift a boundary.
IAM_MANAGEMENT = [
    "iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy",
    "iam:DeleteRolePolicy", "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole",
    "iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion",
    "iam:CreateUser", "iam:AttachUserPolicy", "iam:PutUserPolicy", "iam:CreateAccessKey",
    "iam:AddUserToGroup", "iam:CreateServiceLinkedRole", "iam:TagRole",
]


def boundary_document(templates) -> dict:
    return templates["bootstrap.yaml"]["Resources"][BOUNDARY]["Properties"]["PolicyDocument"]


def statement_actions(document: dict) -> list[str]:
    return [a for s in permissions.statements(document) if s.get("Effect") == "Allow"
            for a in permissions._as_list(s.get("Action"))]


def test_the_boundary_is_the_named_managed_policy(default_templates, default_topology):
    resource = default_templates["bootstrap.yaml"]["Resources"][BOUNDARY]
    assert resource["Type"] == "AWS::IAM::ManagedPolicy"
    # Named <app>-permissions-boundary-<stack id piece>: retained, so a recreated stack must
    # not reuse the name (issue 14 finding 8, tests/iam/test_iam_first_runs.py).
    name = resource["Properties"]["ManagedPolicyName"]["Fn::Join"][1]
    assert name[0] == f"{default_topology.app}-permissions-boundary"
    assert "AWS::StackId" in str(name[1:])
    assert resource["Properties"].get("Roles") is None  # a boundary, attached to nothing


@pytest.mark.parametrize("name", ["cluster.yaml", "pipeline.yaml", "network.yaml",
    "service.yaml"])
def test_every_role_of_the_app_stacks_carries_the_boundary(default_templates, default_topology,
                                                           name):
    if name not in default_templates:
        pytest.skip(f"{name} is not generated on this branch yet")
    expected = ({"Fn::ImportValue": f"{default_topology.app}-bootstrap-PermissionsBoundaryArn"},
                {"Ref": "PermissionsBoundaryArn"})
    for logical_id, role in roles(default_templates[name]).items():
        assert role["Properties"].get("PermissionsBoundary") in expected, logical_id


@pytest.mark.parametrize("role", ["ExecutionRole", "TaskRole"])
def test_task_and_execution_roles_fit_inside_the_boundary(default_templates, role):
    boundary = boundary_document(default_templates)
    documents = role_documents(default_templates["service.yaml"], role)
    assert documents, role
    for document in documents:
        for action in statement_actions(document):
            assert permissions.allows([boundary], action), f"{role}: {action}"


def test_the_pipeline_roles_fit_inside_the_boundary(default_templates):
    boundary = boundary_document(default_templates)
    pipeline = default_templates["pipeline.yaml"]
    for role in roles(pipeline):
        for document in role_documents(pipeline, role):
            for action in statement_actions(document):
                assert permissions.allows([boundary], action), f"{role}: {action}"


def test_the_boundary_holds_the_future_secrets_actions(default_templates):
    boundary = boundary_document(default_templates)
    for action in ("secretsmanager:GetSecretValue", "ssm:GetParameters", "kms:Decrypt"):
        assert permissions.allows([boundary], action)


@pytest.mark.parametrize("action", IAM_MANAGEMENT)
def test_the_boundary_allows_no_iam_management(default_templates, action):
    assert not permissions.allows([boundary_document(default_templates)], action)


def test_the_only_iam_action_in_the_boundary_passes_the_deploy_role_to_cloudformation(
        default_templates):
    iam_statements = [s for s in permissions.statements(boundary_document(default_templates))
                      if any(a.lower().startswith("iam:") for a in statement_actions({"Statement": [s]}))]
    assert len(iam_statements) == 1
    statement = iam_statements[0]
    assert statement["Action"] == ["iam:PassRole"]
    assert statement["Resource"] == [{"Fn::GetAtt": [DEPLOY_ROLE, "Arn"]}]
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}


def _allow_statements_matching(documents, action):
    return [s for d in documents for s in permissions.statements(d)
            if s.get("Effect") == "Allow"
            and any(permissions._matches(p, action) for p in permissions._as_list(s.get("Action")))]


@pytest.mark.parametrize("action", bootstrap.BOUNDARY_CONDITIONED)
def test_role_creating_actions_require_the_boundary(default_templates, action):
    documents = role_documents(default_templates["bootstrap.yaml"], DEPLOY_ROLE)
    matching = _allow_statements_matching(documents, action)
    assert matching, action
    for statement in matching:
        assert statement["Condition"] == {
            "StringEquals": {"iam:PermissionsBoundary": {"Ref": BOUNDARY}}}, action


def test_pass_role_goes_only_to_the_listed_services(default_templates):
    documents = role_documents(default_templates["bootstrap.yaml"], DEPLOY_ROLE)
    for statement in _allow_statements_matching(documents, "iam:PassRole"):
        services = statement["Condition"]["StringEquals"]["iam:PassedToService"]
        assert set(services) <= set(bootstrap.PASS_ROLE_SERVICES)


def test_service_linked_roles_only_of_ecs_autoscaling_and_the_load_balancer(default_templates):
    """The account's first ALB creates ELB's service-linked role, which no ELB schema lists."""
    documents = role_documents(default_templates["bootstrap.yaml"], DEPLOY_ROLE)
    (statement,) = _allow_statements_matching(documents, "iam:CreateServiceLinkedRole")
    names = statement["Condition"]["StringEquals"]["iam:AWSServiceName"]
    assert set(names) == {"ecs.amazonaws.com", "ecs.application-autoscaling.amazonaws.com",
                          "elasticloadbalancing.amazonaws.com"}


def test_the_deploy_role_never_lifts_a_boundary_nor_changes_the_boundary_policy(
        default_templates):
    documents = role_documents(default_templates["bootstrap.yaml"], DEPLOY_ROLE)
    denies = [s for d in documents for s in permissions.statements(d) if s["Effect"] == "Deny"]
    assert any(s["Action"] == ["iam:DeleteRolePermissionsBoundary"] and s["Resource"] == ["*"]
               and "Condition" not in s for s in denies)
    on_boundary = [s for s in denies if {"Ref": BOUNDARY} in s["Resource"]]
    assert on_boundary
    assert set(bootstrap.BOUNDARY_POLICY_CHANGES) <= {a for s in on_boundary for a in s["Action"]}
    assert not permissions.allows(documents, "iam:DeleteRolePermissionsBoundary")
    for action in ("iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:CreateUser"):
        assert not permissions.allows(documents, action)


def test_the_deploy_role_cannot_change_itself(default_templates, default_topology):
    """Its own name matches role/<app>-*; a Deny on its exact ARN (not a name prefix that
    a service's roles could share, issue 14 finding 7) takes every role-changing action back."""
    documents = role_documents(default_templates["bootstrap.yaml"], DEPLOY_ROLE)
    own = {"Fn::GetAtt": [DEPLOY_ROLE, "Arn"]}
    denied = {a for d in documents for s in permissions.statements(d)
              if s["Effect"] == "Deny" and own in s["Resource"] for a in s["Action"]}
    for action in ("iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:AttachRolePolicy",
                   "iam:DeleteRole", "iam:UpdateRole", "iam:DetachRolePolicy"):
        assert action in denied


def test_role_scoped_statements_hold_only_actions_that_take_a_role(default_templates,
                                                                   default_topology):
    """Resource scoping is only safe when IAM authorizes the action against that resource
    type (IAM catalogue of cfn-lint, from the Service Authorization Reference)."""
    documents = role_documents(default_templates["bootstrap.yaml"], DEPLOY_ROLE)
    for statement in (s for d in documents for s in permissions.statements(d)):
        if statement["Effect"] != "Allow" or statement["Resource"] == ["*"]:
            continue
        for action in statement["Action"]:
            assert permissions.action_resource_types(action), (
                f"{action} has no resource-level permission but is scoped")


def test_no_role_inside_the_boundary_changes_the_bootstrap_stack(default_templates):
    boundary = boundary_document(default_templates)
    (deny,) = [s for s in permissions.statements(boundary) if s["Effect"] == "Deny"]
    assert deny["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:cloudformation:"
                                 "${AWS::Region}:${AWS::AccountId}:stack/${AWS::StackName}/*"}]
    from fnmatch import fnmatchcase

    allowed_writes = {a for a in statement_actions(boundary) if a.startswith("cloudformation:")
                      and not a.split(":")[1].startswith(("Describe", "Get", "List"))}
    # The boundary writes some actions as patterns (its size quota): each allowed write,
    # pattern or name, is covered by a pattern or name of the deny.
    assert allowed_writes and all(any(fnmatchcase(a, d) for d in deny["Action"])
                                  for a in allowed_writes), (allowed_writes, deny["Action"])
