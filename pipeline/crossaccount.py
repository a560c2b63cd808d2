"""What the pipeline stack adds when an environment lives in another account (issue 16).

CodePipeline's cross-account recipe
(https://docs.aws.amazon.com/codepipeline/latest/userguide/pipelines-create-cross-account.html):
a customer managed KMS key encrypts the artifact store (the default AWS managed S3 key
cannot be shared with another account), its key policy and the artifact bucket's policy
grant the other accounts, and the ECR repository policy lets them pull the images
(https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policy-examples.html).

Which accounts are "other" is decided where the stack runs, not when it is rendered:
topology.yaml names each environment's account but not the pipeline's, so every grant to
an account is wrapped in a condition `<account> differs from AWS::AccountId`, and all of
it (the key included) exists only when one of them holds (CROSS_ACCOUNT). The pipeline in
staging's account grants production's only; the same template in a separate tooling
account grants both. Without `environments:` nothing here is rendered.
"""
from __future__ import annotations

from awacs.aws import Action, Allow, ArnLike, Condition, PolicyDocument, Principal, Statement
from awacs.aws import StringLike
from troposphere import AWS_NO_VALUE, Equals, GetAtt, If, Not, Or, Ref, Sub, kms

from generator import names
from generator.topology import Topology

CROSS_ACCOUNT = "CrossAccount"
ARTIFACT_KEY = "ArtifactKey"
# What an ECR repository policy needs for another account to pull (repository-policy-examples.html,
# "Allow another account"); ecr:GetAuthorizationToken is the puller's own, not the repository's.
PULL_ACTIONS = ("BatchCheckLayerAvailability", "BatchGetImage", "GetDownloadUrlForLayer")
# The other accounts read artifacts (GetObject through S3, hence Decrypt through S3).
ARTIFACT_READ_ACTIONS = ("GetObject", "GetObjectVersion")
ARTIFACT_BUCKET_READ_ACTIONS = ("ListBucket", "GetBucketLocation")
KEY_USE_BY_OTHER_ACCOUNTS = ("Decrypt",)
# The pipeline's own roles write and read artifacts through S3 with the key (S3 calls
# GenerateDataKey for a PutObject and Decrypt for a GetObject under SSE-KMS); the roles
# that only read (deploy step, verify) get KEY_READ.
KEY_USE_BY_PIPELINE_ROLES = ("Decrypt", "DescribeKey", "Encrypt", "GenerateDataKey")
KEY_READ = ("Decrypt", "DescribeKey")
# Managing the key, never using it: the account (its administrators, and CloudFormation's
# deploy role updating this stack) keeps control, or the key becomes unmanageable
# (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam).
# Listed one by one: this project writes no "*" action.
KEY_ADMINISTRATION = (
    "CancelKeyDeletion", "CreateAlias", "DeleteAlias", "DescribeKey", "DisableKey",
    "DisableKeyRotation", "EnableKey", "EnableKeyRotation", "GetKeyPolicy",
    "GetKeyRotationStatus", "ListAliases", "ListGrants", "ListKeyPolicies",
    "ListResourceTags", "PutKeyPolicy", "RevokeGrant", "ScheduleKeyDeletion", "TagResource",
    "UntagResource", "UpdateAlias", "UpdateKeyDescription",
)


def accounts(topology: Topology) -> tuple[str, ...]:
    """The environments' distinct accounts, in promotion order."""
    return tuple(dict.fromkeys(e.account for e in topology.environments))


def other_condition(account: str) -> str:
    return f"Account{account}IsOther"


def conditions(topology: Topology) -> dict:
    """One condition per environment account (it is not this stack's), and CROSS_ACCOUNT
    (some is not). Fn::Or takes 2 to 10 conditions; MAX_ENVIRONMENTS is 10."""
    result = {other_condition(a): Not(Equals(Ref("AWS::AccountId"), a))
              for a in accounts(topology)}
    if not result:
        return {}
    others = [{"Condition": name} for name in result]
    result[CROSS_ACCOUNT] = Or(*others) if len(others) > 1 else \
        Not(Equals(Ref("AWS::AccountId"), accounts(topology)[0]))
    return result


def per_other_account(topology: Topology, value) -> list:
    """`value(account)` for each account that is not this stack's."""
    return [If(other_condition(a), value(a), Ref(AWS_NO_VALUE)) for a in accounts(topology)]


def _root(account: str) -> Sub:
    return Sub("arn:${AWS::Partition}:iam::%s:root" % account)


def other_account_roots(topology: Topology) -> Principal:
    return Principal("AWS", per_other_account(topology, _root))


def deployer_role_arns(topology: Topology) -> list:
    """Each other account's environment deployer role (names.environment_deployer_role_arn):
    the only roles the deploy step may assume."""
    return per_other_account(topology, lambda account: Sub(
        names.environment_deployer_role_arn(topology.project_app, account,
                                            partition="${AWS::Partition}")))


def reader_role_arns(topology: Topology) -> list:
    """Each other account's environment reader role: the only roles the Build and Verify
    steps may assume (check-upgrade's first look, verify)."""
    return per_other_account(topology, lambda account: Sub(
        names.environment_reader_role_arn(topology.project_app, account,
                                          partition="${AWS::Partition}")))


def key_arn():
    return GetAtt(ARTIFACT_KEY, "Arn")


def artifact_key(topology: Topology) -> kms.Key:
    own_root = Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")
    # CloudFormation names the stack's roles <stack>-<logical id>-<suffix>, under the
    # app's role path (pipeline.iam._role).
    own_roles = Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role%s${AWS::StackName}-*"
                    % names.role_path(topology.app))
    return kms.Key(
        ARTIFACT_KEY,
        Condition=CROSS_ACCOUNT,
        Description=Sub("${AWS::StackName}: pipeline artifacts, readable by the "
                        "environments' accounts"),
        EnableKeyRotation=True,
        KeyPolicy=PolicyDocument(Version="2012-10-17", Statement=[
            Statement(
                Sid="AccountAdministersTheKey",
                Effect=Allow,
                Principal=Principal("AWS", [own_root]),
                Action=[Action("kms", name) for name in KEY_ADMINISTRATION],
                Resource=["*"],  # in a key policy, "*" is this key
            ),
            Statement(
                # The account root as principal delegates to IAM, so the roles' own
                # policies (pipeline.iam) must allow it too; the condition keeps every
                # other principal of the account out.
                Sid="PipelineRolesUseTheKey",
                Effect=Allow,
                Principal=Principal("AWS", [own_root]),
                Action=[Action("kms", name) for name in KEY_USE_BY_PIPELINE_ROLES],
                Resource=["*"],
                Condition=Condition(ArnLike("aws:PrincipalArn", own_roles)),
            ),
            Statement(
                # Decrypt only, and only as S3 reads the artifacts on their behalf
                # (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
                Sid="EnvironmentAccountsReadArtifacts",
                Effect=Allow,
                Principal=other_account_roots(topology),
                Action=[Action("kms", name) for name in KEY_USE_BY_OTHER_ACCOUNTS],
                Resource=["*"],
                Condition=Condition(StringLike("kms:ViaService",
                                               Sub("s3.${AWS::Region}.amazonaws.com"))),
            ),
        ]),
    )


def key_use_statement(write: bool) -> Statement:
    """The pipeline roles' side of PipelineRolesUseTheKey (pipeline.iam)."""
    return Statement(Effect=Allow, Action=[Action("kms", name) for name in
                                           (KEY_USE_BY_PIPELINE_ROLES if write else KEY_READ)],
                     Resource=[key_arn()])


def artifact_read_statements(topology: Topology, bucket: str) -> list[Statement]:
    """The artifact bucket policy's grants to the other accounts: read, nothing else."""
    return [
        Statement(
            Sid="EnvironmentAccountsReadArtifacts",
            Effect=Allow,
            Principal=other_account_roots(topology),
            Action=[Action("s3", name) for name in ARTIFACT_READ_ACTIONS],
            Resource=[Sub("${%s.Arn}/*" % bucket)],
        ),
        Statement(
            Sid="EnvironmentAccountsListArtifacts",
            Effect=Allow,
            Principal=other_account_roots(topology),
            Action=[Action("s3", name) for name in ARTIFACT_BUCKET_READ_ACTIONS],
            Resource=[GetAtt(bucket, "Arn")],
        ),
    ]


def repository_policy(topology: Topology) -> PolicyDocument:
    """The image repository's policy: the other accounts pull; a repository policy has no
    Resource (it is the repository's own)."""
    return PolicyDocument(Version="2012-10-17", Statement=[Statement(
        Sid="EnvironmentAccountsPullImages",
        Effect=Allow,
        Principal=other_account_roots(topology),
        Action=[Action("ecr", name) for name in PULL_ACTIONS],
    )])
