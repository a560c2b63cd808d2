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
from troposphere import AWS_ACCOUNT_ID, GetAtt, Ref, Sub, iam

from generator.topology import Topology

ARTIFACT_BUCKET = "ArtifactBucket"
IMAGE_REPOSITORY = "ImageRepository"
BUILD_PROJECT = "BuildProject"
LIVE_PARAMETERS_PROJECT = "LiveParametersProject"
BUILD_LOG_GROUP = "BuildLogGroup"
LIVE_PARAMETERS_LOG_GROUP = "LiveParametersLogGroup"
VERIFY_PROJECT = "VerifyProject"
VERIFY_LOG_GROUP = "VerifyLogGroup"
VERIFY_ROLE = "VerifyRole"
REPORT_GROUPS = ("TestReportGroup", "LintReportGroup")
PIPELINE_ROLE = "PipelineRole"
BUILD_ROLE = "BuildRole"
LIVE_PARAMETERS_ROLE = "LiveParametersRole"
DEPLOY_ROLE = "CloudFormationDeployRole"


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
    projects = [GetAtt(BUILD_PROJECT, "Arn"), GetAtt(LIVE_PARAMETERS_PROJECT, "Arn"),
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
            Resource=[app_stacks(topology), own_stack()],
        ),
        Statement(
            Effect=Allow,
            Action=[Action("iam", "PassRole")],
            Resource=[GetAtt(DEPLOY_ROLE, "Arn")],
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
    ])


def live_parameters_role(topology: Topology) -> iam.Role:
    return _role(LIVE_PARAMETERS_ROLE, "codebuild.amazonaws.com",
                 Sub("Reads the service stacks' current parameters for ${AWS::StackName}"), [
        _log_group_statement(LIVE_PARAMETERS_LOG_GROUP),
        *_artifact_statements(write=True),
        Statement(Effect=Allow, Action=[Action("cloudformation", "DescribeStacks")],
                  Resource=[app_stacks(topology)]),
    ])


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


def deploy_role(topology: Topology) -> iam.Role:
    """What CloudFormation needs to create, update and roll back the cluster, service and
    pipeline stacks. Mutations are scoped to the app's names where the service allows."""
    app = topology.app
    cluster = f"{app}-cluster"
    stack_roles = [_iam_arn(f"role/{app}-*"), _iam_arn("role/${AWS::StackName}-*")]
    statements = [
        Statement(
            Effect=Allow,
            # Describe/List/Get calls of these services have no resource-level
            # permissions; CloudFormation needs them to read what it manages.
            Action=[
                *_actions("ec2", "DescribeSecurityGroups", "DescribeVpcs", "DescribeSubnets",
                          "DescribeNetworkInterfaces", "DescribeAccountAttributes"),
                *_actions("ecs", "DescribeTaskDefinition", "DescribeClusters",
                          "DescribeServices", "ListTagsForResource"),
                *_actions("servicediscovery", "GetOperation", "GetNamespace",
                          "ListNamespaces", "ListTagsForResource"),
                *_actions("elasticloadbalancing", "DescribeLoadBalancers",
                          "DescribeTargetGroups", "DescribeListeners",
                          "DescribeLoadBalancerAttributes", "DescribeTargetGroupAttributes",
                          "DescribeTags", "DescribeRules"),
                *_actions("application-autoscaling", "DescribeScalableTargets",
                          "DescribeScalingPolicies"),
                *_actions("logs", "DescribeLogGroups"),
                *_actions("codebuild", "BatchGetProjects"),
                *_actions("route53", "GetHostedZone", "ListHostedZonesByName",
                          "CreateHostedZone", "DeleteHostedZone", "ChangeTagsForResource",
                          "GetChange"),
            ],
            Resource=["*"],
        ),
        Statement(
            Effect=Allow,
            # Task definitions, Cloud Map namespace creation, security-group creation and
            # ALB creation are not scopable to a resource ARN before the resource exists.
            Action=[
                *_actions("ecs", "RegisterTaskDefinition", "DeregisterTaskDefinition",
                          "CreateCluster", "TagResource"),
                *_actions("servicediscovery", "CreatePrivateDnsNamespace", "TagResource"),
                *_actions("ec2", "CreateSecurityGroup", "CreateTags"),
                *_actions("elasticloadbalancing", "CreateLoadBalancer", "CreateTargetGroup",
                          "AddTags"),
                *_actions("application-autoscaling", "RegisterScalableTarget",
                          "DeregisterScalableTarget", "PutScalingPolicy",
                          "DeleteScalingPolicy", "TagResource"),
            ],
            Resource=["*"],
        ),
        Statement(
            Effect=Allow,
            Action=_actions("ecs", "CreateService", "UpdateService", "DeleteService",
                            "UpdateCluster", "DeleteCluster", "PutClusterCapacityProviders",
                            "UntagResource"),
            Resource=[_arn("ecs", f"cluster/{cluster}"), _arn("ecs", f"service/{cluster}/*")],
        ),
        Statement(
            Effect=Allow,
            Action=_actions("servicediscovery", "DeleteNamespace", "UpdatePrivateDnsNamespace",
                            "UntagResource"),
            Resource=[_arn("servicediscovery", "namespace/*")],
        ),
        Statement(
            Effect=Allow,
            # Security groups and load balancers get generated ids and names, so the
            # resource is scoped by type within this account and region.
            Action=[
                *_actions("ec2", "DeleteSecurityGroup", "AuthorizeSecurityGroupIngress",
                          "RevokeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
                          "RevokeSecurityGroupEgress", "UpdateSecurityGroupRuleDescriptionsIngress"),
                *_actions("elasticloadbalancing", "DeleteLoadBalancer", "DeleteTargetGroup",
                          "CreateListener", "DeleteListener", "ModifyListener",
                          "ModifyLoadBalancerAttributes", "ModifyTargetGroup",
                          "ModifyTargetGroupAttributes", "SetSecurityGroups", "SetSubnets",
                          "RemoveTags"),
            ],
            Resource=[
                _arn("ec2", "security-group/*"),
                _arn("elasticloadbalancing", "loadbalancer/app/*"),
                _arn("elasticloadbalancing", "targetgroup/*"),
                _arn("elasticloadbalancing", "listener/app/*"),
            ],
        ),
        Statement(
            Effect=Allow,
            Action=_actions("logs", "CreateLogGroup", "DeleteLogGroup", "PutRetentionPolicy",
                            "DeleteRetentionPolicy", "TagResource", "UntagResource",
                            "TagLogGroup"),
            Resource=[_arn("logs", f"log-group:/ecs/{cluster}/*"),
                      _arn("logs", "log-group:/aws/codebuild/${AWS::StackName}-*")],
        ),
        Statement(
            Effect=Allow,
            Action=_actions("iam", "CreateRole", "DeleteRole", "GetRole", "UpdateRole",
                            "UpdateAssumeRolePolicy", "PutRolePolicy", "DeleteRolePolicy",
                            "GetRolePolicy", "TagRole", "UntagRole",
                            "UpdateRoleDescription"),
            Resource=stack_roles,
        ),
        Statement(
            Effect=Allow,
            Action=[Action("iam", "PassRole")],
            Resource=stack_roles,
            Condition=Condition(StringEquals("iam:PassedToService", [
                "ecs-tasks.amazonaws.com", "codebuild.amazonaws.com",
                "codepipeline.amazonaws.com",
            ])),
        ),
        Statement(
            Effect=Allow,
            # The service-linked roles ECS and Application Auto Scaling use.
            Action=[Action("iam", "CreateServiceLinkedRole")],
            Resource=[_iam_arn("role/aws-service-role/ecs.amazonaws.com/*"),
                      _iam_arn("role/aws-service-role/ecs.application-autoscaling"
                               ".amazonaws.com/*")],
        ),
        # The pipeline stack itself (UpdatePipeline stage).
        Statement(
            Effect=Allow,
            Action=[
                *_actions("s3", "CreateBucket", "PutBucketPolicy", "GetBucketPolicy",
                          "DeleteBucketPolicy", "PutBucketVersioning",
                          "PutEncryptionConfiguration", "PutBucketPublicAccessBlock",
                          "PutLifecycleConfiguration", "PutBucketOwnershipControls",
                          "PutBucketTagging", "GetBucketTagging", "DeleteBucket"),
            ],
            Resource=[GetAtt(ARTIFACT_BUCKET, "Arn")],
        ),
        Statement(
            Effect=Allow,
            Action=_actions("ecr", "CreateRepository", "DeleteRepository",
                            "PutLifecyclePolicy", "DeleteLifecyclePolicy",
                            "PutImageScanningConfiguration", "PutImageTagMutability",
                            "DescribeRepositories", "TagResource", "UntagResource",
                            "ListTagsForResource"),
            Resource=[GetAtt(IMAGE_REPOSITORY, "Arn")],
        ),
        Statement(
            Effect=Allow,
            Action=_actions("codebuild", "CreateProject", "UpdateProject", "DeleteProject",
                            "CreateReportGroup", "UpdateReportGroup", "DeleteReportGroup"),
            Resource=[_arn("codebuild", "project/${AWS::StackName}-*"),
                      _arn("codebuild", "report-group/${AWS::StackName}-*")],
        ),
        Statement(
            Effect=Allow,
            Action=_actions("codepipeline", "GetPipeline", "UpdatePipeline", "CreatePipeline",
                            "DeletePipeline", "GetPipelineState", "TagResource",
                            "UntagResource", "StartPipelineExecution"),
            Resource=[_arn("codepipeline", "${AWS::StackName}-*")],
        ),
    ]
    return _role(DEPLOY_ROLE, "cloudformation.amazonaws.com",
                 Sub("CloudFormation deploys the ${AWS::StackName} app stacks with it"),
                 statements)


def _iam_arn(resource: str) -> Sub:
    return Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:%s" % resource)
