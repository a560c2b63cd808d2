"""Issue 16 item 5: an environment in another account gets what CodePipeline documents for
cross-account artifacts
(https://docs.aws.amazon.com/codepipeline/latest/userguide/pipelines-create-cross-account.html):
a customer managed key (rotation on) on the artifact store and bucket, granted to that
account, the artifact bucket's read grant, and an ECR repository policy letting it pull
(https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policy-examples.html);
and the deploy step may assume that account's environment deployer role, no other.

The template is resolved as CloudFormation would in the account the stack runs in
(promotion_kit.deployed): in staging's account (the pipeline's, in TWO_ENVIRONMENTS) the
grants name production's account only; in a separate tooling account both; with every
environment in the stack's own account, none of it exists."""
from __future__ import annotations

import pytest

from generator import names
from promotion_kit import (
    ARTIFACT_BUCKET, PIPELINE_ACCOUNT, PRODUCTION_ACCOUNT, REGION, TEMPLATE_BUCKET,
    TOOLING_ACCOUNT, deployed, listed, matches, principals, rendered, root, statements,
    topology_with, two_environments, values,
)

OWN_ROLES = ("PipelineRole", "BuildRole", "DeployStepRole", "VerifyRole")


@pytest.fixture(scope="module")
def template() -> dict:
    return rendered(two_environments())


def in_account(template: dict, account: str) -> dict:
    return deployed(template, account)["Resources"]


def others(account: str) -> list[str]:
    return [a for a in (PIPELINE_ACCOUNT, PRODUCTION_ACCOUNT) if a != account]


def key_statement(resources: dict, sid: str) -> dict:
    (found,) = [s for s in statements(resources["ArtifactKey"]["Properties"]["KeyPolicy"])
                if s["Sid"] == sid]
    return found


@pytest.mark.parametrize("account", [PIPELINE_ACCOUNT, TOOLING_ACCOUNT])
def test_the_key_is_granted_to_exactly_the_other_accounts(template, account):
    resources = in_account(template, account)
    key = resources["ArtifactKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    grant = key_statement(resources, "EnvironmentAccountsReadArtifacts")
    assert principals(grant) == sorted(root(a) for a in others(account))
    assert listed(grant["Action"]) == ["kms:Decrypt"]
    assert grant["Condition"] == {"StringLike": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    # Every other statement is the stack's own account: administration (no use of the
    # key), and use by this stack's roles only.
    own = [s for s in statements(key["KeyPolicy"]) if s is not grant]
    assert {p for s in own for p in principals(s)} == {root(account)}
    admin = key_statement(resources, "AccountAdministersTheKey")
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"} & set(admin["Action"])
    use = key_statement(resources, "PipelineRolesUseTheKey")
    (pattern,) = use["Condition"]["ArnLike"].values()
    for role in OWN_ROLES:
        assert matches(pattern, values(account)[f"{role}.Arn"])
    assert not matches(pattern, f"arn:aws:iam::{account}:role/shop/shop-staging-web-TaskRole-1")
    assert not matches(pattern, f"arn:aws:iam::{account}:role/Admin")


def test_the_artifacts_are_encrypted_with_that_key(template):
    resources = in_account(template, PIPELINE_ACCOUNT)
    key_arn = values(PIPELINE_ACCOUNT)["ArtifactKey.Arn"]
    store = resources["Pipeline"]["Properties"]["ArtifactStore"]
    assert store["EncryptionKey"] == {"Id": key_arn, "Type": "KMS"}
    (rule,) = resources["ArtifactBucket"]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms",
                                                     "KMSMasterKeyID": key_arn}


@pytest.mark.parametrize("account", [PIPELINE_ACCOUNT, TOOLING_ACCOUNT])
def test_the_bucket_lets_exactly_the_other_accounts_read(template, account):
    policy = in_account(template, account)["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]
    grants = [s for s in statements(policy) if s["Effect"] == "Allow"]
    assert {p for s in grants for p in principals(s)} == {root(a) for a in others(account)}
    actions = {a for s in grants for a in listed(s["Action"])}
    assert actions == {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket",
                       "s3:GetBucketLocation"}
    # The TLS-only rule stays.
    assert [s["Sid"] for s in statements(policy) if s["Effect"] == "Deny"] == [
        "DenyInsecureTransport"]


@pytest.mark.parametrize("account", [PIPELINE_ACCOUNT, TOOLING_ACCOUNT])
def test_the_repository_lets_exactly_the_other_accounts_pull(template, account):
    policy = in_account(template, account)["ImageRepository"]["Properties"]["RepositoryPolicyText"]
    (grant,) = statements(policy)
    assert grant["Effect"] == "Allow"
    assert principals(grant) == sorted(root(a) for a in others(account))
    assert sorted(listed(grant["Action"])) == [
        "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    assert "Resource" not in grant and "Condition" not in grant


def role_statements(resources: dict, role: str) -> list[dict]:
    return [s for policy in resources[role]["Properties"]["Policies"]
            for s in statements(policy["PolicyDocument"])]


def assume_role_resources(resources: dict, role: str) -> list[str]:
    return [r for s in role_statements(resources, role) if "sts:AssumeRole" in listed(s["Action"])
            for r in listed(s["Resource"])]


@pytest.mark.parametrize("account", [PIPELINE_ACCOUNT, TOOLING_ACCOUNT])
def test_the_deploy_step_assumes_exactly_the_other_accounts_deployer_roles(template, account):
    """The deploy step assumes the deployer roles; Build (check-upgrade's first look) and
    Verify only the read-only reader roles; the pipeline itself none."""
    resources = in_account(template, account)
    assert sorted(assume_role_resources(resources, "DeployStepRole")) == sorted(
        names.environment_deployer_role_arn("shop", a) for a in others(account))
    for role in ("BuildRole", "VerifyRole"):
        assert sorted(assume_role_resources(resources, role)) == sorted(
            names.environment_reader_role_arn("shop", a) for a in others(account))
    assert assume_role_resources(resources, "PipelineRole") == []


def test_every_pipeline_role_may_use_the_key_as_far_as_it_needs(template):
    """The pipeline and the build write artifacts (S3 asks KMS for a data key), the deploy
    step and verify only read them."""
    resources = in_account(template, PIPELINE_ACCOUNT)
    key_arn = values(PIPELINE_ACCOUNT)["ArtifactKey.Arn"]
    uses = {role: {a for s in role_statements(resources, role) if key_arn in listed(s["Resource"])
                   for a in listed(s["Action"])} for role in OWN_ROLES}
    assert uses == {
        "PipelineRole": {"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"},
        "BuildRole": {"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"},
        "DeployStepRole": {"kms:Decrypt", "kms:DescribeKey"},
        "VerifyRole": {"kms:Decrypt", "kms:DescribeKey"},
    }
    # And the key policy lets them (its statement for this stack's roles).
    use = key_statement(resources, "PipelineRolesUseTheKey")
    assert set().union(*uses.values()) <= set(listed(use["Action"]))


def test_with_every_environment_in_the_stacks_account_there_is_nothing_to_share():
    def one_account(document):
        document["environments"]["production"]["account"] = PIPELINE_ACCOUNT
    template = rendered(topology_with(one_account))
    resources = in_account(template, PIPELINE_ACCOUNT)
    assert "ArtifactKey" not in resources
    assert "RepositoryPolicyText" not in resources["ImageRepository"]["Properties"]
    assert "EncryptionKey" not in resources["Pipeline"]["Properties"]["ArtifactStore"]
    (rule,) = resources["ArtifactBucket"]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    policy = resources["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]
    assert [s["Effect"] for s in statements(policy)] == ["Deny"]
    for role in OWN_ROLES:
        assert len(resources[role]["Properties"]["Policies"]) == 1
    # The same template in another account (a tooling account) does share, with that one.
    elsewhere = in_account(template, TOOLING_ACCOUNT)
    assert principals(statements(elsewhere["ImageRepository"]["Properties"][
        "RepositoryPolicyText"])[0]) == [root(PIPELINE_ACCOUNT)]


# --- the deploy step cannot reach production except through the assumed role -------------

def _applies(statement: dict, action: str, resource: str) -> bool:
    if not any(matches(a, action, case_sensitive=False) for a in listed(statement["Action"])):
        return False
    if not any(matches(r, resource) for r in listed(statement["Resource"])):
        return False
    # Only the conditions the deploy step role uses; each narrows, never widens.
    for operator, keys in statement.get("Condition", {}).items():
        assert operator == "StringEquals", operator
        assert set(keys) == {"iam:PassedToService"}
    return True


def decide(statements_: list[dict], action: str, resource: str) -> str:
    applying = [s for s in statements_ if _applies(s, action, resource)]
    if any(s["Effect"] == "Deny" for s in applying):
        return "deny"
    return "allow" if applying else "implicit deny"


def _production_arn(pattern: str) -> str:
    """One concrete ARN of production's account shaped like a resource the role may touch
    in its own account: the account swapped, the bucket production's own, wildcards filled."""
    arn = pattern.replace(PIPELINE_ACCOUNT, PRODUCTION_ACCOUNT)
    arn = arn.replace(TEMPLATE_BUCKET, "shop-bootstrap-templatebucket-prod0a1b")
    arn = arn.replace(ARTIFACT_BUCKET, "shop-pipeline-artifactbucket-prod0a1b")
    return arn.replace("*", "x1")


def test_the_deploy_step_cannot_touch_production_except_by_assuming_its_role(template):
    """An IAM evaluation of the deploy step role's identity policies in staging's account
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
    every action it is granted, on production's counterpart of every resource it is granted,
    is refused, except sts:AssumeRole on production's environment deployer role. The
    actions granted on "*" are the ones IAM authorizes only against "*" (describing and
    listing stacks without a name: calls in the caller's own account, which no resource
    policy of another account opens), listed here so that a new one is looked at."""
    resources = in_account(template, PIPELINE_ACCOUNT)
    granted = role_statements(resources, "DeployStepRole")
    deployer = names.environment_deployer_role_arn("shop", PRODUCTION_ACCOUNT)
    assert decide(granted, "sts:AssumeRole", deployer) == "allow"
    assert decide(granted, "sts:AssumeRole",
                  names.environment_deployer_role_arn("shop", TOOLING_ACCOUNT)) != "allow"
    assert decide(granted, "sts:AssumeRole",
                  f"arn:aws:iam::{PRODUCTION_ACCOUNT}:role/OrganizationAccountAccessRole") != "allow"
    anywhere = sorted({a for s in granted if s["Effect"] == "Allow" and listed(s["Resource"]) == ["*"]
                       for a in listed(s["Action"])})
    assert anywhere == ["cloudformation:DescribeStacks", "cloudformation:ListStacks"]
    probes = 0
    for statement in granted:
        if statement["Effect"] != "Allow":
            continue
        for action in listed(statement["Action"]):
            for pattern in listed(statement["Resource"]):
                # The transform is AWS's, in no account (CreateChangeSet needs it too).
                if pattern == "*" or action == "sts:AssumeRole" or ":aws:transform/" in pattern:
                    continue
                target = _production_arn(pattern)
                assert PRODUCTION_ACCOUNT in target or target.startswith("arn:aws:s3:::")
                assert decide(granted, action, target) != "allow", (action, target)
                probes += 1
    assert probes > 20
    # The probe does find a grant when the resource is the role's own (not production's).
    own = next(listed(s["Resource"])[0] for s in granted
               if s["Effect"] == "Allow" and "cloudformation:CreateChangeSet" in listed(s["Action"])
               and listed(s["Resource"]) != ["*"])
    assert decide(granted, "cloudformation:CreateChangeSet", own.replace("*", "x1")) == "allow"


# --- the permissions boundary every pipeline role carries ----------------------------------

def _condition_holds(statement: dict, context: dict) -> bool:
    for operator, keys in statement.get("Condition", {}).items():
        for key, wanted in keys.items():
            given = context.get(key)
            wanted = [str(w) for w in listed(wanted)]
            if operator in ("StringLike", "ArnLike"):
                ok = given is not None and any(matches(w, given) for w in wanted)
            elif operator == "StringEquals":
                ok = given in wanted
            elif operator == "Null":
                ok = (given is None) == (wanted[0].lower() == "true")
            else:
                ok = False  # not modelled: counted as not granting
            if not ok:
                return False
    return True


def _boundary_allows(boundary: list[dict], action: str, resource: str, context: dict) -> bool:
    applying = [s for s in boundary
                if any(matches(a, action, case_sensitive=False) for a in listed(s["Action"]))
                and any(matches(r, resource) for r in listed(s.get("Resource", "*")))
                and _condition_holds(s, context)]
    return bool(applying) and not any(s["Effect"] == "Deny" for s in applying)


def test_the_cross_account_grants_fit_inside_the_permissions_boundary(template):
    """A role's effective permissions are where its own policies and its boundary overlap
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html):
    every action the cross-account policies grant must also be inside the boundary the
    bootstrap stack renders for the same topology, or the pipeline cannot read its own
    artifacts nor reach production."""
    from generator import render
    from generator.stacks import bootstrap
    from promotion_kit import resolve

    topology = two_environments()
    boot = render.bootstrap_template(topology).to_dict()
    known = {**values(PIPELINE_ACCOUNT), "AWS::StackName": "shop-bootstrap",
             f"{bootstrap.DEPLOY_ROLE}.Arn": f"arn:aws:iam::{PIPELINE_ACCOUNT}:role/shop-bootstrap-"
                                               f"{bootstrap.DEPLOY_ROLE}-1A2B",
             f"{bootstrap.TEMPLATE_BUCKET}.Arn": f"arn:aws:s3:::{TEMPLATE_BUCKET}"}
    boundary = statements(resolve(boot["Resources"][bootstrap.PERMISSIONS_BOUNDARY][
        "Properties"]["PolicyDocument"], boot.get("Conditions", {}), known))
    resources = in_account(template, PIPELINE_ACCOUNT)
    # S3 asks KMS on the role's behalf when it reads or writes an artifact.
    context = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    outside = []
    for role in OWN_ROLES:
        policies = resources[role]["Properties"]["Policies"]
        for policy in policies[1:]:  # the CrossAccount policy
            for statement in statements(policy["PolicyDocument"]):
                for action in listed(statement["Action"]):
                    for resource in listed(statement["Resource"]):
                        if not _boundary_allows(boundary, action, resource, context):
                            outside.append((role, action, resource))
    assert outside == []
