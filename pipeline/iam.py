"""The pipeline stack's roles, one per principal, each limited to what that principal does.

No statement uses a `*` action. A `*` resource appears only where the AWS service offers
no resource-level permission for the action; each such statement says so. Actions are
written as awacs `Action(prefix, name)` so the policy reads like the IAM reference.
"""
from __future__ import annotations

from awacs.aws import (
    Action, Allow, Condition, PolicyDocument, Principal, Statement, StringEquals,
)
from awacs.sts import AssumeRole
from troposphere import AWS_ACCOUNT_ID, GetAtt, ImportValue, Ref, Sub, iam

from generator.topology import Topology

ARTIFACT_BUCKET = "ArtifactBucket"
IMAGE_REPOSITORY = "ImageRepository"
BUILD_PROJECT = "BuildProject"
DEPLOY_PROJECT = "DeployProject"
BUILD_LOG_GROUP = "BuildLogGroup"
DEPLOY_LOG_GROUP = "DeployLogGroup"
VERIFY_PROJECT = "VerifyProject"
VERIFY_LOG_GROUP = "VerifyLogGroup"
VERIFY_ROLE = "VerifyRole"
REPORT_GROUPS = ("TestReportGroup", "LintReportGroup")
PIPELINE_ROLE = "PipelineRole"
BUILD_ROLE = "BuildRole"
DEPLOY_STEP_ROLE = "DeployStepRole"


def _actions(prefix: str, *names: str) -> list[Action]:
    return [Action(prefix, name) for name in names]


def _trust(service: str) -> PolicyDocument:
    # SourceAccount keeps another account's service from assuming the role (confused deputy).
    return PolicyDocument(
        Version="2012-10-17",
        Statement=[Statement(
            Effect=Allow,
            Principal=Principal("Service", service),
            Action=[AssumeRole],
            Condition=Condition(StringEquals("aws:SourceAccount", Ref(AWS_ACCOUNT_ID))),
        )],
    )


def _arn(service: str, resource: str) -> Sub:
    return Sub("arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s" % (service, resource))


def _bucket_objects() -> Sub:
    return Sub("${%s.Arn}/*" % ARTIFACT_BUCKET)


def app_stacks(topology: Topology) -> Sub:
    """Every stack the pipeline deploys for the app: <app>-cluster and <app>-<service>."""
    return _arn("cloudformation", f"stack/{topology.app}-*/*")


def own_stack() -> Sub:
    return _arn("cloudformation", "stack/${AWS::StackName}/*")


def _log_group_statement(log_group: str) -> Statement:
    arn = GetAtt(log_group, "Arn")
    return Statement(
        Effect=Allow,
        Action=_actions("logs", "CreateLogStream", "PutLogEvents"),
        Resource=[arn, Sub("${%s.Arn}:log-stream:*" % log_group)],
    )


def _artifact_statements(write: bool) -> list[Statement]:
    object_actions = ["GetObject", "GetObjectVersion"] + (["PutObject"] if write else [])
    return [
        Statement(Effect=Allow, Action=_actions("s3", *object_actions),
                  Resource=[_bucket_objects()]),
        Statement(Effect=Allow,
                  Action=_actions("s3", "GetBucketLocation", "GetBucketVersioning",
                                  "GetBucketAcl"),
                  Resource=[GetAtt(ARTIFACT_BUCKET, "Arn")]),
    ]


def _role(name: str, service: str, description, statements: list[Statement]) -> iam.Role:
    return iam.Role(
        name,
        Description=description,
        AssumeRolePolicyDocument=_trust(service),
        Policies=[iam.Policy(
            PolicyName=name[0].lower() + name[1:],
            PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=statements),
        )],
    )


def pipeline_role(topology: Topology) -> iam.Role:
    projects = [GetAtt(BUILD_PROJECT, "Arn"), GetAtt(DEPLOY_PROJECT, "Arn"),
                GetAtt(VERIFY_PROJECT, "Arn")]
    return _role(PIPELINE_ROLE, "codepipeline.amazonaws.com",
                 Sub("Runs the ${AWS::StackName} pipeline: source, builds, stack deploys"), [
        *_artifact_statements(write=True),
        Statement(
            Effect=Allow,
            # Connections were renamed from codestar-connections to codeconnections;
            # an ARN of either kind may be given, and both prefixes are checked.
            Action=[Action("codestar-connections", "UseConnection"),
                    Action("codeconnections", "UseConnection")],
            Resource=[Ref("ConnectionArn")],
        ),
        Statement(Effect=Allow, Action=_actions("codebuild", "StartBuild", "BatchGetBuilds"),
                  Resource=projects),
        Statement(
            Effect=Allow,
            Action=_actions("cloudformation", "CreateStack", "UpdateStack", "DescribeStacks",
                            "DescribeStackEvents"),
            Resource=[own_stack()],
        ),
        Statement(
            Effect=Allow,
            Action=[Action("iam", "PassRole")],
            Resource=[deploy_role_arn(topology)],
            Condition=Condition(StringEquals("iam:PassedToService",
                                             "cloudformation.amazonaws.com")),
        ),
    ])


def build_role(topology: Topology) -> iam.Role:
    report_groups = [GetAtt(name, "Arn") for name in REPORT_GROUPS]
    return _role(BUILD_ROLE, "codebuild.amazonaws.com",
                 Sub("Tests, lints and pushes the image for ${AWS::StackName}"), [
        _log_group_statement(BUILD_LOG_GROUP),
        *_artifact_statements(write=True),  # input/output artifacts and the pip cache
        # ecr:GetAuthorizationToken has no resource-level permissions.
        Statement(Effect=Allow, Action=[Action("ecr", "GetAuthorizationToken")], Resource=["*"]),
        Statement(
            Effect=Allow,
            Action=_actions("ecr", "BatchCheckLayerAvailability", "InitiateLayerUpload",
                            "UploadLayerPart", "CompleteLayerUpload", "PutImage",
                            "BatchGetImage", "GetDownloadUrlForLayer", "DescribeImages"),
            Resource=[GetAtt(IMAGE_REPOSITORY, "Arn")],
        ),
        Statement(
            Effect=Allow,
            Action=_actions("codebuild", "CreateReport", "UpdateReport", "BatchPutTestCases"),
            Resource=report_groups,
        ),
        # check-upgrade reads what the last complete deploy left (aws s3 sync).
        Statement(Effect=Allow, Action=[Action("s3", "GetObject")],
                  Resource=[_template_bucket_objects(topology, "deployed/*")]),
        Statement(Effect=Allow, Action=[Action("s3", "ListBucket")],
                  Resource=[_template_bucket(topology)]),
    ])


def deploy_step_role(topology: Topology) -> iam.Role:
    """What `python -m generator deploy` calls in the pipeline's Deploy step; CloudFormation
    then acts with the bootstrap stack's deploy role, which this role may only pass."""
    return _role(DEPLOY_STEP_ROLE, "codebuild.amazonaws.com",
                 Sub("Runs the boto3 deployer for ${AWS::StackName}"), [
        _log_group_statement(DEPLOY_LOG_GROUP),
        *_artifact_statements(write=False),
        Statement(
            Effect=Allow,
            Action=_actions("cloudformation", "CreateChangeSet", "DescribeChangeSet",
                            "ExecuteChangeSet", "DeleteChangeSet", "DescribeStacks",
                            "DescribeStackEvents", "DeleteStack", "GetTemplateSummary"),
            Resource=[app_stacks(topology)],
        ),
        # ListStacks has no resource-level permissions; the deployer finds removed
        # services' stacks with it.
        Statement(Effect=Allow, Action=[Action("cloudformation", "ListStacks")],
                  Resource=["*"]),
        Statement(Effect=Allow, Action=[Action("ecs", "DescribeServices")],
                  Resource=[_arn("ecs", f"service/{topology.cluster_stack_name}/*")]),
        Statement(
            Effect=Allow,
            # templates/: bodies over the inline limit; deployed/: the snapshot of what the
            # last complete deploy left, which the next build's check-upgrade reads.
            Action=_actions("s3", "PutObject", "GetObject", "DeleteObject"),
            Resource=[_template_bucket_objects(topology, "templates/*"),
                      _template_bucket_objects(topology, "deployed/*")],
        ),
        Statement(Effect=Allow, Action=[Action("s3", "ListBucket")],
                  Resource=[_template_bucket(topology)]),
        Statement(
            Effect=Allow,
            Action=[Action("iam", "PassRole")],
            Resource=[deploy_role_arn(topology)],
            Condition=Condition(StringEquals("iam:PassedToService",
                                             "cloudformation.amazonaws.com")),
        ),
    ])


def _template_bucket(topology: Topology) -> Sub:
    return Sub("arn:${AWS::Partition}:s3:::${Bucket}",
               Bucket=ImportValue(f"{topology.bootstrap_stack_name}-TemplateBucketName"))


def _template_bucket_objects(topology: Topology, pattern: str) -> Sub:
    return Sub("arn:${AWS::Partition}:s3:::${Bucket}/%s" % pattern,
               Bucket=ImportValue(f"{topology.bootstrap_stack_name}-TemplateBucketName"))


def deploy_role_arn(topology: Topology) -> ImportValue:
    return ImportValue(f"{topology.bootstrap_stack_name}-DeployRoleArn")


def verify_role(topology: Topology) -> iam.Role:
    """Read-only: what `python -m generator verify` calls."""
    return _role(VERIFY_ROLE, "codebuild.amazonaws.com",
                 Sub("Verifies the app's stacks and services for ${AWS::StackName}"), [
        _log_group_statement(VERIFY_LOG_GROUP),
        *_artifact_statements(write=False),
        Statement(
            Effect=Allow,
            Action=_actions("cloudformation", "DescribeStacks", "DescribeStackEvents",
                            "DescribeStackResource"),
            Resource=[app_stacks(topology)],
        ),
        Statement(Effect=Allow, Action=[Action("ecs", "DescribeServices")],
                  Resource=[_arn("ecs", f"service/{topology.cluster_stack_name}/*")]),
        # servicediscovery:DiscoverInstances has no resource-level permissions.
        Statement(Effect=Allow, Action=[Action("servicediscovery", "DiscoverInstances")],
                  Resource=["*"]),
    ])


def _iam_arn(resource: str) -> Sub:
    return Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:%s" % resource)
