"""Issue 10's roles and permissions: the Service Connect TLS infrastructure role (cluster
stack) carries the boundary and fits inside it; the execution role's secret statements fit
inside it; the deploy role may create that role (with the boundary), attach its managed
policy and pass it to ECS."""
from __future__ import annotations

import pytest

from templates_iam import inline_policies, role_documents, roles
from generator import names
from generator.awsfacts import permissions
from generator.stacks import bootstrap
from generator.stacks import cluster as cluster_stack

DEPLOY_ROLE = bootstrap.DEPLOY_ROLE
BOUNDARY = bootstrap.PERMISSIONS_BOUNDARY


def boundary_document(templates) -> dict:
    return templates["bootstrap.yaml"]["Resources"][BOUNDARY]["Properties"]["PolicyDocument"]


def statements_of(document: dict) -> list[dict]:
    """Statements, both branches of a statement-level Fn::If included."""
    found = []
    for statement in permissions._as_list(document.get("Statement")):
        if isinstance(statement, dict) and "Fn::If" in statement:
            found += [b for b in statement["Fn::If"][1:] if isinstance(b, dict) and "Effect" in b]
        elif isinstance(statement, dict):
            found.append(statement)
    return found


def test_the_cluster_stack_creates_the_tls_role_only_with_service_connect_tls(
        workloads_templates, default_templates):
    # Declared in both (it outlives service_connect_tls until no service uses it: issue 14
    # finding 5); created when ServiceConnectTlsRoleWanted is "true", the Default only with
    # service_connect_tls (the deployer passes "true" longer while a service still uses it).
    for templates, wanted in ((workloads_templates, "true"), (default_templates, "false")):
        cluster = templates["cluster.yaml"]
        role = roles(cluster)[cluster_stack.TLS_ROLE]
        assert role["Condition"] == cluster_stack.TLS_ROLE_KEPT
        assert cluster["Parameters"][names.TLS_ROLE_WANTED_PARAMETER]["Default"] == wanted


@pytest.mark.parametrize("name", ["cluster.yaml", "service.yaml", "network.yaml",
                                  "pipeline.yaml"])
def test_every_role_of_the_workloads_stacks_carries_the_boundary(workloads_templates, name):
    expected = ({"Fn::ImportValue": "shop-bootstrap-PermissionsBoundaryArn"},
                {"Ref": "PermissionsBoundaryArn"})
    for logical_id, role in roles(workloads_templates[name]).items():
        assert role["Properties"].get("PermissionsBoundary") in expected, logical_id


def test_the_tls_role_has_the_managed_policy_and_a_deny_outside_the_topologys_ca(
        workloads_templates, workloads_topology):
    role = roles(workloads_templates["cluster.yaml"])[cluster_stack.TLS_ROLE]["Properties"]
    # Issue 15, path 6: the only inline policy denies every Private CA action on any CA
    # but topology.yaml's (and its certificates), so it allows nothing.
    ca = workloads_topology.service_connect_tls.private_ca_arn
    (policy,) = role["Policies"]
    (deny,) = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["NotResource"] == [ca, f"{ca}/*"]
    assert sorted(deny["Action"]) == sorted(a for a in cluster_stack.TLS_MANAGED_POLICY_ACTIONS
                                            if a.startswith("acm-pca:"))
    assert role["ManagedPolicyArns"] == [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/"
                                          + cluster_stack.TLS_MANAGED_POLICY}]
    boundary = boundary_document(workloads_templates)
    for action in cluster_stack.TLS_MANAGED_POLICY_ACTIONS:
        assert permissions.is_iam_action(action), action
        assert permissions.allows([boundary], action), action


def test_the_boundary_scopes_the_tls_secrets_to_ecs_service_connects_own(workloads_templates):
    statement = next(s for s in statements_of(boundary_document(workloads_templates))
                     if s.get("Sid") == "TlsSecrets")
    assert statement["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:*:"
                                                 "${AWS::AccountId}:secret:ecs-sc!*"}]


def test_the_execution_roles_secret_statements_fit_inside_the_boundary(workloads_templates):
    boundary = boundary_document(workloads_templates)
    role = workloads_templates["service.yaml"]["Resources"]["ExecutionRole"]
    actions = {a for policy in inline_policies(role)
               for s in statements_of(policy["PolicyDocument"]) for a in s["Action"]}
    assert {"secretsmanager:GetSecretValue", "ssm:GetParameters", "kms:Decrypt"} <= actions
    for action in actions:
        assert permissions.allows([boundary], action), action


def test_the_deploy_role_may_create_the_tls_role_attach_its_policy_and_pass_it_to_ecs(
        workloads_templates):
    documents = role_documents(workloads_templates["bootstrap.yaml"], DEPLOY_ROLE)
    allows = [s for d in documents for s in permissions.statements(d) if s["Effect"] == "Allow"]
    app_roles = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/shop/*"}
    for action in ("iam:CreateRole", "iam:AttachRolePolicy"):
        (statement,) = [s for s in allows if action in s["Action"]]
        assert statement["Resource"] == [app_roles]  # shop-cluster-ServiceConnectTlsRole-...
        assert statement["Condition"] == {
            "StringEquals": {"iam:PermissionsBoundary": {"Ref": BOUNDARY}}}
    (passing,) = [s for s in allows if "iam:PassRole" in s["Action"]]
    assert passing["Resource"] == [app_roles]
    assert "ecs.amazonaws.com" in passing["Condition"]["StringEquals"]["iam:PassedToService"]


def test_the_workloads_templates_contain_the_new_resource_types(workloads_templates):
    types = set().union(*(permissions.resource_types(workloads_templates[name])
                          for name in ("cluster.yaml", "service.yaml")))
    # The cluster's role and the HTTPS listener: the coverage test checks both.
    assert {"AWS::IAM::Role", "AWS::ElasticLoadBalancingV2::Listener"} <= types
    cluster_types = permissions.resource_types(workloads_templates["cluster.yaml"])
    assert "AWS::IAM::Role" in cluster_types
