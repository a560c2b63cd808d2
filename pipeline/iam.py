"""The pipeline stack's roles, one per principal, each limited to what that principal does.

No statement uses a `*` action. A `*` resource appears only where the AWS service offers
no resource-level permission for the action; each such statement says so. Actions are
written as awacs `Action(prefix, name)` so the policy reads like the IAM reference.

Every role carries the app's permissions boundary (bootstrap stack), so the deploy role,
which may only create roles that carry it, can create these. The role CloudFormation runs
the stacks as lives in the bootstrap stack (generator.stacks.bootstrap), so updating or
deleting this stack never touches it. The roles of the CodeBuild steps that call AWS
(deploy, verify) are derived from the boto3 operations those commands declare
(generator.awsfacts.operations).

With `environments:` every role also uses the artifact key when an environment lives in
another account (pipeline.crossaccount, a second inline policy under the same condition),
and the deploy step may assume exactly those accounts' environment deployer roles.
"""
from __future__ import annotations

from awacs.aws import (
    Action, Allow, Condition, Deny, PolicyDocument, Principal, Statement, StringEquals,
)
from awacs.sts import AssumeRole
from troposphere import AWS_ACCOUNT_ID, AWS_NO_VALUE, GetAtt, If, ImportValue, Ref, Sub, iam

from generator import names
from generator.awsfacts import operations
from generator.topology import Topology
from pipeline import crossaccount

ARTIFACT_BUCKET = "ArtifactBucket"
IMAGE_REPOSITORY = "ImageRepository"
BUILD_PROJECT = "BuildProject"
BUILD_LOG_GROUP = "BuildLogGroup"
VERIFY_PROJECT = "VerifyProject"
VERIFY_LOG_GROUP = "VerifyLogGroup"
VERIFY_ROLE = "VerifyRole"
REPORT_GROUPS = ("TestReportGroup", "LintReportGroup")
PIPELINE_ROLE = "PipelineRole"
BUILD_ROLE = "BuildRole"
# The CodeBuild step running `python -m generator deploy` (its project and log group are
# named ${AWS::StackName}-deploy, like the other small projects).
DEPLOY_STEP_ROLE = "DeployStepRole"
DEPLOY_PROJECT = "DeployProject"
DEPLOY_LOG_GROUP = "DeployLogGroup"
DEPLOY_PROJECT_SUFFIX = "deploy"


def bootstrap_export(topology: Topology, output: str) -> ImportValue:
    """An export of the bootstrap stack (generator.stacks.bootstrap.outputs)."""
    return ImportValue(f"{topology.bootstrap_stack_name}-{output}")


def deploy_role_arn(topology: Topology) -> ImportValue:
    return bootstrap_export(topology, names.DEPLOY_ROLE_EXPORT)


def permissions_boundary_arn(topology: Topology) -> ImportValue:
    return bootstrap_export(topology, names.BOUNDARY_EXPORT)


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


def _role(topology: Topology, name: str, service: str, description,
          statements: list[Statement], cross_account: list[Statement] = (),
          writes_artifacts: bool = True) -> iam.Role:
    policy_name = name[0].lower() + name[1:]
    policies = [iam.Policy(
        PolicyName=policy_name,
        PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=statements),
    )]
    if topology.environments:
        # Only while an environment is in another account (crossaccount.CROSS_ACCOUNT):
        # the key exists then, and the deployer roles to assume.
        policies.append(If(crossaccount.CROSS_ACCOUNT, iam.Policy(
            PolicyName=policy_name + "CrossAccount",
            PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[
                crossaccount.key_use_statement(writes_artifacts), *cross_account]),
        ), Ref(AWS_NO_VALUE)))
    return iam.Role(
        name,
        Description=description,
        AssumeRolePolicyDocument=_trust(service),
        Path=names.role_path(topology.app),
        PermissionsBoundary=permissions_boundary_arn(topology),
        Policies=policies,
    )


def pipeline_role(topology: Topology) -> iam.Role:
    projects = [GetAtt(BUILD_PROJECT, "Arn"), GetAtt(DEPLOY_PROJECT, "Arn"),
                GetAtt(VERIFY_PROJECT, "Arn")]
    return _role(topology, PIPELINE_ROLE, "codepipeline.amazonaws.com",
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
            # Its only CloudFormation action is UpdatePipeline, on this stack; the app's
            # stacks are the deploy step's.
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
    return _role(topology, BUILD_ROLE, "codebuild.amazonaws.com",
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
        # Without a baseline, check-upgrade asks whether the cluster stack exists
        # (generator.ops.baseline): each environment's, with environments.
        Statement(Effect=Allow, Action=[Action("cloudformation", "DescribeStacks")],
                  Resource=[_arn("cloudformation", "stack/%s/*" % deployment.cluster_stack_name)
                            for deployment in topology.deployments]),
    ], cross_account=[_assume_readers(topology)])


def _assume_readers(topology: Topology) -> Statement:
    """Another account's environment is read through its reader role (created by its
    bootstrap stack with --trust), that role only."""
    return Statement(Effect=Allow, Action=[AssumeRole],
                     Resource=crossaccount.reader_role_arns(topology))


def _template_bucket(topology: Topology) -> Sub:
    return Sub("arn:${AWS::Partition}:s3:::${Bucket}",
               Bucket=bootstrap_export(topology, names.TEMPLATE_BUCKET_EXPORT))


def _template_bucket_objects(topology: Topology, pattern: str) -> Sub:
    return Sub("arn:${AWS::Partition}:s3:::${Bucket}/%s" % pattern,
               Bucket=bootstrap_export(topology, names.TEMPLATE_BUCKET_EXPORT))


def verify_role(topology: Topology) -> iam.Role:
    """Read-only: what `python -m generator verify` calls (VERIFY_OPERATIONS)."""
    return _role(topology, VERIFY_ROLE, "codebuild.amazonaws.com",
                 Sub("Verifies the app's stacks and services for ${AWS::StackName}"), [
        _log_group_statement(VERIFY_LOG_GROUP),
        *_artifact_statements(write=False),
        *operation_statements(topology, operations.VERIFY_OPERATIONS,
                              unnamed=operations.VERIFY_UNNAMED_OPERATIONS),
    ], cross_account=[_assume_readers(topology)], writes_artifacts=False)


def deploy_step_role(topology: Topology) -> iam.Role:
    """What `python -m generator deploy` calls (DEPLOY_OPERATIONS): change sets on the
    app's stacks, which CloudFormation runs as the bootstrap stack's deploy role."""
    app = topology.app
    log_group = _arn("logs", "log-group:/aws/codebuild/${AWS::StackName}-%s"
                     % DEPLOY_PROJECT_SUFFIX)
    return _role(topology, DEPLOY_STEP_ROLE, "codebuild.amazonaws.com",
                 Sub("Deploys the app's cluster, network and service stacks for "
                     "${AWS::StackName}"), [
        Statement(Effect=Allow, Action=_actions("logs", "CreateLogStream", "PutLogEvents"),
                  Resource=[log_group, Sub("${Group}:log-stream:*", Group=log_group)]),
        *_artifact_statements(write=False),
        *operation_statements(topology, operations.DEPLOY_OPERATIONS,
                              operations.DEPLOY_UNNAMED_OPERATIONS),
        *_tls_preflight_statements(topology),
        Statement(
            # CloudFormation reads a change set's TemplateURL with the caller's
            # credentials, so the uploader needs to read what it uploaded.
            Effect=Allow,
            Action=[Action("s3", "GetObject")],
            Resource=_operation_scopes(topology)["s3"],
        ),
        Statement(
            # After a complete deploy, `aws s3 sync --delete` (deploy.buildspec.yml) keeps
            # its templates under deployed/ for the next build's check-upgrade.
            Effect=Allow,
            Action=_actions("s3", "PutObject", "DeleteObject"),
            Resource=[_template_bucket_objects(topology, "deployed/*")],
        ),
        Statement(Effect=Allow, Action=[Action("s3", "ListBucket")],
                  Resource=[_template_bucket(topology)]),
        Statement(
            # The change sets name it as RoleARN, so CloudFormation runs them as it.
            Effect=Allow,
            Action=[Action("iam", "PassRole")],
            Resource=[deploy_role_arn(topology)],
            Condition=Condition(StringEquals("iam:PassedToService",
                                             "cloudformation.amazonaws.com")),
        ),
        Statement(
            # ingress.yaml uses the AWS::LanguageExtensions transform; a change set of a
            # template with a transform needs CreateChangeSet on the transform too
            # (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/control-access-with-iam.html).
            Effect=Allow,
            Action=[Action("cloudformation", "CreateChangeSet")],
            Resource=[Sub("arn:${AWS::Partition}:cloudformation:${AWS::Region}:aws:"
                          "transform/LanguageExtensions")],
        ),
        Statement(
            # The deploy step changes the cluster, network, ingress and service stacks only: never
            # the bootstrap stack (the deploy role, the boundary) or the pipeline's own.
            Effect=Deny,
            Action=_actions("cloudformation", *sorted(
                name for name in _names("cloudformation", operations.DEPLOY_OPERATIONS)
                if not name.startswith(("Describe", "Get", "List")))),
            Resource=[_arn("cloudformation", f"stack/{app}-bootstrap/*"),
                      _arn("cloudformation", f"stack/{app}-pipeline/*")],
        ),
    ], cross_account=[
        # `deploy --env` in another account runs as that account's environment deployer
        # role (created by its bootstrap stack with --trust): exactly those roles, no
        # other role anywhere.
        Statement(Effect=Allow, Action=[AssumeRole],
                  Resource=crossaccount.deployer_role_arns(topology)),
    ], writes_artifacts=False)


def _tls_preflight_statements(topology: Topology) -> list[Statement]:
    """The preflight reads the Service Connect TLS CA (DEPLOY_TLS_OPERATIONS), that CA
    only; both actions take a certificate-authority resource (Service Authorization
    Reference, AWS Private Certificate Authority)."""
    tls = topology.service_connect_tls
    if tls is None:
        return []
    return [Statement(Effect=Allow, Action=[Action(*a.split(":", 1)) for a in sorted(
        operations.iam_actions(operations.DEPLOY_TLS_OPERATIONS))],
        Resource=[tls.private_ca_arn])]


def _names(prefix: str, declared) -> set[str]:
    return {a.split(":", 1)[1] for a in operations.iam_actions(declared)
            if a.startswith(prefix + ":")}


def _operation_scopes(topology: Topology) -> dict[str, list]:
    """IAM prefix -> the resources the declared operations of that prefix may touch."""
    bucket = bootstrap_export(topology, names.TEMPLATE_BUCKET_EXPORT)
    return {
        "cloudformation": [app_stacks(topology)],
        # Each environment's cluster (the ones in this account; another account's are
        # reached through its deployer role).
        "ecs": [_arn("ecs", f"service/{deployment.cluster_stack_name}/*")
                for deployment in topology.deployments],
        # Templates above 51,200 bytes, uploaded for CreateChangeSet's TemplateURL;
        # CloudFormation reads the URL with the caller's credentials, hence GetObject.
        "s3": [Sub("arn:${AWS::Partition}:s3:::${Bucket}/*", Bucket=bucket)],
        # servicediscovery:DiscoverInstances has no resource-level permissions.
        "servicediscovery": ["*"],
        # The bake's and `status`'s DescribeAlarms, by name: each environment's alarms
        # (generator.names: <app>-<service>-..., <app>-<caller>-to-<callee>-...); the
        # alarm ARN of the Service Authorization Reference, Amazon CloudWatch. Put, Get,
        # DeleteDashboards: the deployments' dashboards by name
        # (generator.dashboard.iam_resources).
        "cloudwatch": ([_arn("cloudwatch", f"alarm:{deployment.app}-*")
                        for deployment in topology.deployments]
                       + dashboard_arns(topology)),
    }


def dashboard_arns(topology: Topology) -> list[Sub]:
    """CloudWatch dashboards are global: their ARNs have no Region."""
    from generator import dashboard

    return [Sub("arn:${AWS::Partition}:cloudwatch::${AWS::AccountId}:%s" % resource)
            for resource in dashboard.iam_resources(topology)]


def operation_statements(topology: Topology, declared, unnamed=frozenset()) -> list[Statement]:
    """One Allow per IAM prefix for the declared boto3 operations, scoped per prefix;
    `unnamed` operations are called without a resource name and need "*"."""
    scopes = _operation_scopes(topology)
    grouped: dict[str, set[str]] = {}
    result = []
    if unnamed:
        # Called without a resource name (e.g. DescribeStacks listing every stack to
        # find the app's by tag): IAM authorizes such a call against "*" only.
        result.append(Statement(Effect=Allow, Action=[Action(*a.split(":", 1)) for a in
                                                      sorted(operations.iam_actions(unnamed))],
                                Resource=["*"]))
    for action in operations.iam_actions(set(declared) - set(unnamed)):
        prefix, name = action.split(":", 1)
        grouped.setdefault(prefix, set()).add(name)
    unknown = sorted(set(grouped) - set(scopes))
    if unknown:
        raise ValueError(f"no resource scope for the {', '.join(unknown)} operations; "
                         "add one to pipeline.iam._operation_scopes")
    return result + [Statement(Effect=Allow, Action=_actions(prefix, *sorted(names)),
                               Resource=scopes[prefix])
                     for prefix, names in sorted(grouped.items())]
