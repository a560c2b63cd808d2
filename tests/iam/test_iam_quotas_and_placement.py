"""IAM quotas on the rendered templates, and where the deploy role lives (issue 8:
deleting or updating the pipeline stack never removes the role its operations run as)."""
from __future__ import annotations

import pytest

from templates_iam import attached_managed_policies, inline_policies, roles
from generator.awsfacts import permissions, quotas
from generator.stacks import bootstrap

DEPLOY_ROLE = bootstrap.DEPLOY_ROLE


def _values(name: str, topology) -> dict[str, str]:
    return bootstrap.size_values(topology) if name == "bootstrap.yaml" else {}


@pytest.mark.parametrize("label", ["default", "public", "workloads"])
def test_every_policy_is_within_the_iam_size_quotas(generated, label):
    """Measured as IAM counts: JSON without whitespace, every intrinsic function replaced
    by the longest value it can take (permissions.resolve)."""
    topology, templates = generated[label]
    for name, template in templates.items():
        values = _values(name, topology)
        for logical_id, resource in template["Resources"].items():
            if isinstance(resource, dict) and resource["Type"] == "AWS::IAM::ManagedPolicy":
                size = permissions.policy_size(resource["Properties"]["PolicyDocument"], values)
                print(f"{label} {name} {logical_id}: {size} characters (managed)")
                assert size <= quotas.MANAGED_POLICY_CHARS.limit, logical_id
        for logical_id, role in roles(template).items():
            inline = sum(permissions.policy_size(p["PolicyDocument"], values)
                         for p in inline_policies(role))
            managed = (len(role["Properties"].get("ManagedPolicyArns", []))
                       + len(attached_managed_policies(template, logical_id)))
            print(f"{label} {name} {logical_id}: {inline} inline characters, {managed} managed")
            assert inline <= quotas.ROLE_INLINE_POLICY_CHARS.limit, logical_id
            assert managed <= quotas.MANAGED_POLICIES_PER_ROLE.limit, logical_id


def test_size_measurement_counts_substituted_values():
    document = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                               "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${B}/*"}}]}
    assert permissions.policy_size(document, {"B": "b" * 63}) == len(
        '{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":'
        '"arn:aws-us-gov:s3:::' + "b" * 63 + '/*"}]}')


def test_the_deploy_role_lives_in_the_bootstrap_stack_and_is_retained(default_templates):
    resources = default_templates["bootstrap.yaml"]["Resources"]
    role = resources[DEPLOY_ROLE]
    assert role["Type"] == "AWS::IAM::Role"
    assert role["DeletionPolicy"] == "Retain"
    assert role["UpdateReplacePolicy"] == "Retain"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "cloudformation.amazonaws.com"}
    # Its policies are kept with it, so a retained role still works.
    for policy in attached_managed_policies(default_templates["bootstrap.yaml"], DEPLOY_ROLE).values():
        assert policy["DeletionPolicy"] == "Retain"


def test_no_role_of_the_pipeline_stack_is_assumed_by_cloudformation(default_templates):
    pipeline = default_templates["pipeline.yaml"]
    assert DEPLOY_ROLE not in pipeline["Resources"]
    for logical_id, role in roles(pipeline).items():
        principals = [s["Principal"] for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]]
        assert all("cloudformation.amazonaws.com" not in str(p) for p in principals), logical_id


def test_the_pipeline_runs_its_stack_actions_as_the_bootstrap_deploy_role(default_templates,
                                                                          default_topology):
    pipeline = default_templates["pipeline.yaml"]["Resources"]["Pipeline"]["Properties"]
    actions = [a for stage in pipeline["Stages"] if isinstance(stage, dict)
               for a in stage.get("Actions", [])
               if a["ActionTypeId"]["Provider"] == "CloudFormation"]
    assert actions
    for action in actions:
        assert action["Configuration"]["RoleArn"] == {
            "Fn::ImportValue": f"{default_topology.app}-bootstrap-DeployRoleArn"}


def test_the_bootstrap_exports_are_the_design_notes_names(default_templates, default_topology):
    outputs = default_templates["bootstrap.yaml"]["Outputs"]
    assert {o["Export"]["Name"] for o in outputs.values()} == {
        f"{default_topology.app}-bootstrap-{name}"
        for name in ("DeployRoleArn", "PermissionsBoundaryArn", "TemplateBucketName")}


def test_the_template_bucket_is_private_encrypted_versioned_and_kept(default_templates):
    resources = default_templates["bootstrap.yaml"]["Resources"]
    bucket = resources[bootstrap.TEMPLATE_BUCKET]
    properties = bucket["Properties"]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(properties["PublicAccessBlockConfiguration"].values())
    assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert properties["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] > 0
    policy = resources[bootstrap.TEMPLATE_BUCKET_POLICY]["Properties"]["PolicyDocument"]
    assert policy["Statement"][0]["Effect"] == "Deny"
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
