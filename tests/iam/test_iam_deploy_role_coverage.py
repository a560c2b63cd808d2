"""The deploy role allows every action the resource-provider schemas list for every
resource type the app's templates contain (issue 8: "a deploy role complete by
construction"), and the check would notice a gap."""
from __future__ import annotations

import dataclasses

import pytest

from templates_iam import DEPLOYED_TEMPLATES, load_template, role_documents
from generator.awsfacts import permissions, schemas
from generator.stacks import bootstrap

DEPLOY_ROLE = bootstrap.DEPLOY_ROLE


def deployed_types(templates: dict[str, dict]) -> set[str]:
    types = set()
    for name in DEPLOYED_TEMPLATES:
        types |= permissions.resource_types(templates[name])
    return types


@pytest.mark.parametrize("label", ["default", "public", "workloads"])
def test_the_deploy_role_covers_every_type_operation_of_every_template(generated, label):
    _, templates = generated[label]
    types = deployed_types(templates)
    result = permissions.coverage(role_documents(templates["bootstrap.yaml"], DEPLOY_ROLE), types)
    print(f"{label}: {len(types)} resource types, type-operations covered {result}")
    assert result.gaps == ()
    assert result.covered == result.total
    # Every resource type with handler permissions, times create/read/update/delete.
    assert result.total >= 4 * len(types - {"AWS::CloudFormation::WaitConditionHandle"})


def test_the_committed_bootstrap_template_still_covers_the_installed_schemas(repo_root):
    """A newer cfn-lint whose schemas add a permission fails here until `make templates`
    regenerates templates/bootstrap.yaml (and `generate --check` fails meanwhile too)."""
    committed = {path.name: load_template(path)
                 for path in (repo_root / "templates").glob("*.yaml")}
    types = deployed_types(committed)
    gaps = permissions.uncovered(role_documents(committed["bootstrap.yaml"], DEPLOY_ROLE), types)
    assert gaps == []


def test_the_templates_contain_the_types_the_issue_names(default_templates):
    types = deployed_types(default_templates)
    assert {"AWS::ServiceDiscovery::PrivateDnsNamespace", "AWS::EC2::SecurityGroupIngress",
            "AWS::ApplicationAutoScaling::ScalableTarget", "AWS::CodePipeline::Pipeline",
            "AWS::EC2::SecurityGroup", "AWS::ECS::Service"} <= types


def test_a_schema_that_gains_a_permission_leaves_a_gap(default_templates, monkeypatch):
    """Simulates a newer schema: SecurityGroupIngress's create handler also lists
    ec2:DescribeFlowLogs (a real IAM action the deploy role does not have)."""
    documents = role_documents(default_templates["bootstrap.yaml"], DEPLOY_ROLE)
    types = deployed_types(default_templates)
    assert permissions.is_iam_action("ec2:DescribeFlowLogs")
    assert not permissions.allows(documents, "ec2:DescribeFlowLogs")
    original = schemas.schema

    def newer_schema(type_name):
        found = original(type_name)
        if type_name != "AWS::EC2::SecurityGroupIngress":
            return found
        handlers = dict(found.handler_permissions)
        handlers["create"] = handlers["create"] + ("ec2:DescribeFlowLogs",)
        return dataclasses.replace(found, handler_permissions=handlers)

    monkeypatch.setattr(schemas, "schema", newer_schema)
    result = permissions.coverage(documents, types)
    assert result.gaps == (("AWS::EC2::SecurityGroupIngress", "create", "ec2:DescribeFlowLogs"),)
    assert result.covered == result.total - 1


def test_a_template_that_gains_a_resource_type_leaves_gaps(default_templates):
    documents = role_documents(default_templates["bootstrap.yaml"], DEPLOY_ROLE)
    types = deployed_types(default_templates) | {"AWS::SQS::Queue"}
    gaps = permissions.uncovered(documents, types)
    assert ("AWS::SQS::Queue", "create", "sqs:CreateQueue") in gaps
    assert {t for t, _, _ in gaps} == {"AWS::SQS::Queue"}


def test_a_type_without_handler_permissions_must_be_looked_up_by_hand():
    # AWS::CodeBuild::Project has none in its schema and is listed in NO_SCHEMA_PERMISSIONS;
    # another such type is an error, not silently nothing to grant.
    assert not schemas.schema("AWS::CodeBuild::Project").permissions()
    assert permissions.required_actions({"AWS::CodeBuild::Project"})
    assert not schemas.schema("AWS::DocDB::DBCluster").permissions()
    with pytest.raises(schemas.UnknownResourceType):
        permissions.required_actions({"AWS::DocDB::DBCluster"})


def test_the_legacy_deploy_role_is_not_complete(repo_root):
    """The pre-rework CloudFormationDeployRole (pipeline.yaml of the seed) misses what
    failed on AWS: the namespace's ec2:DescribeRegions and the rest of issue 8's list."""
    legacy_dir = repo_root / "tests" / "fixtures" / "legacy" / "seed"
    templates = {path.name: load_template(path) for path in legacy_dir.glob("*.yaml")}
    documents = role_documents(templates["pipeline.yaml"], DEPLOY_ROLE)
    types = set().union(*(permissions.resource_types(t) for t in templates.values()))
    result = permissions.coverage(documents, types)
    print(f"legacy deploy role: type-operations covered {result}")
    missing = {action for _, _, action in result.gaps}
    assert result.covered < result.total
    assert ("AWS::ServiceDiscovery::PrivateDnsNamespace", "create",
            "ec2:DescribeRegions") in result.gaps
    assert {"ec2:DescribeRegions", "ec2:DescribeSecurityGroupRules", "cloudwatch:PutMetricAlarm",
            "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms",
            "application-autoscaling:DescribeScheduledActions",
            "codestar-connections:PassConnection"} <= missing


def test_resource_types_are_found_inside_for_each_blocks():
    template = {"Transform": "AWS::LanguageExtensions", "Resources": {
        "Log": {"Type": "AWS::Logs::LogGroup"},
        "Fn::ForEach::Callers": ["Caller", {"Ref": "Callers"}, {
            "${Caller}Ingress": {"Type": "AWS::EC2::SecurityGroupIngress"},
            "Fn::ForEach::Ports": ["Port", ["80"], {
                "${Caller}${Port}Rule": {"Type": "AWS::EC2::SecurityGroupEgress"}}],
        }],
    }}
    assert permissions.resource_types(template) == {
        "AWS::Logs::LogGroup", "AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"}


def test_wildcards_match_as_iam_matches_them():
    document = {"Statement": [{"Effect": "Allow", "Action": ["ec2:Describe*", "S3:getobject"],
                               "Resource": "*"}]}
    assert permissions.allows([document], "ec2:DescribeRegions")
    assert permissions.allows([document], "s3:GetObject")
    assert not permissions.allows([document], "ec2:CreateTags")
    deny = {"Statement": {"Effect": "Deny", "Action": "ec2:DescribeRegions", "Resource": "*"}}
    assert not permissions.allows([document, deny], "ec2:DescribeRegions")


def test_excluded_actions_are_few_and_each_has_a_reason():
    assert len(permissions.EXCLUDED) <= 15
    assert all(len(reason) > 20 for reason in permissions.EXCLUDED.values())


def test_no_read_handler_action_is_excluded(default_templates):
    """A read that fails on AccessDenied fails rollbacks and drift detection: only
    writes of unused features may be left out."""
    required = permissions.required_actions(deployed_types(default_templates))
    for type_name, operations in required.items():
        for action in operations.get("read", ()):
            if permissions.is_iam_action(action):
                assert not permissions.is_excluded(action), f"{type_name} read: {action}"


def test_excluded_actions_are_not_granted(default_templates):
    documents = role_documents(default_templates["bootstrap.yaml"], DEPLOY_ROLE)
    required = permissions.required_actions(deployed_types(default_templates))
    listed = {a for ops in required.values() for actions in ops.values() for a in actions}
    excluded = {a for a in listed if permissions.is_excluded(a)}
    assert "iam:DeleteRolePermissionsBoundary" in excluded
    assert not any(permissions.allows(documents, a) for a in excluded)


def test_names_the_schemas_list_that_are_not_iam_actions_have_iam_equivalents_granted(
        default_templates):
    """s3:DeleteBucketCors and the like are API names; IAM authorizes them as the Put
    action of the same configuration (Service Authorization Reference, Amazon S3)."""
    documents = role_documents(default_templates["bootstrap.yaml"], DEPLOY_ROLE)
    not_iam = permissions.not_iam_actions(deployed_types(default_templates))
    print("not IAM actions:", sorted(not_iam))
    equivalents = {
        "s3:DeleteBucketAnalyticsConfiguration": "s3:PutAnalyticsConfiguration",
        "s3:DeleteBucketCors": "s3:PutBucketCORS",
        "s3:DeleteBucketEncryption": "s3:PutEncryptionConfiguration",
        "s3:DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
        "s3:DeleteBucketMetricsConfiguration": "s3:PutMetricsConfiguration",
        "s3:DeleteBucketReplication": "s3:PutReplicationConfiguration",
        "s3:PutBucketReplication": "s3:PutReplicationConfiguration",
        "s3:PutObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration",
        "s3:REST.PUT.OBJECT": None,  # the log group's export to S3; not used
    }
    assert not_iam <= set(equivalents), "a new non-IAM name: map it to its IAM action here"
    for name in not_iam:
        if equivalents[name]:
            assert permissions.allows(documents, equivalents[name]), name
