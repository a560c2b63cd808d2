"""The pipeline stack's CodeBuild side: the three projects (build, deploy, verify), their
log groups and the build's report groups. Three projects whatever the topology: with
`environments:` each Deploy and Verify action names its environment instead
(pipeline.promotion)."""
from __future__ import annotations

from troposphere import AWS_NO_VALUE, GetAtt, Join, Ref, Sub
from troposphere import codebuild, logs

from generator import names
from generator.stacks import cluster as cluster_stack
from generator.topology import Topology
from pipeline import iam, promotion

BUILDSPEC = "buildspec.yml"
DEPLOY_BUILDSPEC = "pipeline/deploy.buildspec.yml"
VERIFY_BUILDSPEC = "pipeline/verify.buildspec.yml"
# Report names used in buildspec.yml's `reports:`; CodeBuild files a report named N
# under the report group "<project name>-N", which this stack creates.
REPORTS = {"TestReportGroup": "tests", "LintReportGroup": "lint"}
BUILD_IMAGE = "aws/codebuild/standard:7.0"


def build_project_name() -> Sub:
    return Sub("${AWS::StackName}-build")


def log_groups() -> list[logs.LogGroup]:
    return [
        _build_log_group(iam.BUILD_LOG_GROUP, "build"),
        _build_log_group(iam.DEPLOY_LOG_GROUP, "deploy"),
        _build_log_group(iam.VERIFY_LOG_GROUP, "verify"),
    ]


def _build_log_group(logical_id: str, project_suffix: str) -> logs.LogGroup:
    # Named as CodeBuild names it, so it goes with the stack: a retained group would make
    # re-creating the stack fail on the existing name.
    return logs.LogGroup(
        logical_id,
        DeletionPolicy="Delete",
        UpdateReplacePolicy="Delete",
        LogGroupName=Sub("/aws/codebuild/${AWS::StackName}-%s" % project_suffix),
        RetentionInDays=90,
    )


def report_groups() -> list[codebuild.ReportGroup]:
    return [
        codebuild.ReportGroup(
            logical_id,
            Name=Sub("${AWS::StackName}-build-%s" % report),
            Type="TEST",
            DeleteReports=True,
            ExportConfig=codebuild.ReportExportConfig(ExportConfigType="NO_EXPORT"),
        )
        for logical_id, report in REPORTS.items()
    ]


def build_project(topology: Topology) -> codebuild.Project:
    return codebuild.Project(
        iam.BUILD_PROJECT,
        Name=build_project_name(),
        Description="Tests, generate --check, lint, hadolint, then build and push each "
                    "distinct image (the default app, each build directory)",
        ServiceRole=GetAtt(iam.BUILD_ROLE, "Arn"),
        Source=codebuild.Source(Type="CODEPIPELINE", BuildSpec=BUILDSPEC),
        Artifacts=codebuild.Artifacts(Type="CODEPIPELINE"),
        Environment=codebuild.Environment(
            Type="LINUX_CONTAINER",
            ComputeType="BUILD_GENERAL1_MEDIUM",
            Image=BUILD_IMAGE,
            PrivilegedMode=True,  # docker build needs it
            EnvironmentVariables=[
                codebuild.EnvironmentVariable(
                    Name="IMAGE_REPOSITORY_URI", Type="PLAINTEXT",
                    Value=GetAtt(iam.IMAGE_REPOSITORY, "RepositoryUri")),
                # check-upgrade compares with the templates the last Deploy left there.
                codebuild.EnvironmentVariable(
                    Name="TEMPLATE_BUCKET", Type="PLAINTEXT",
                    Value=iam.bootstrap_export(topology, names.TEMPLATE_BUCKET_EXPORT)),
                *_build_environment_variables(topology),
            ],
        ),
        # pip's cache (buildspec.yml `cache: paths`) kept in the artifact bucket.
        Cache=codebuild.ProjectCache(
            Type="S3", Location=Sub("${%s}/codebuild-cache" % iam.ARTIFACT_BUCKET)),
        LogsConfig=codebuild.LogsConfig(CloudWatchLogs=codebuild.CloudWatchLogs(
            Status="ENABLED", GroupName=Ref(iam.BUILD_LOG_GROUP))),
        TimeoutInMinutes=30,
    )


def _build_environment_variables(topology: Topology) -> list:
    """With environments: which to check (buildspec.yml loops over ENVIRONMENTS), and
    where this run's approval reports go (the artifact bucket)."""
    if not topology.environments:
        return []
    return [
        codebuild.EnvironmentVariable(Name=promotion.ENVIRONMENTS_VARIABLE, Type="PLAINTEXT",
                                      Value=promotion.environment_names(topology)),
        codebuild.EnvironmentVariable(Name="ARTIFACT_BUCKET", Type="PLAINTEXT",
                                      Value=Ref(iam.ARTIFACT_BUCKET)),
    ]


def _small_project(logical_id: str, suffix: str, description: str, role: str,
                   buildspec: str, log_group: str, variables=(),
                   timeout_minutes: int = 15) -> codebuild.Project:
    """A CodeBuild project that runs one of the project's own commands, no Docker."""
    return codebuild.Project(
        logical_id,
        Name=Sub("${AWS::StackName}-%s" % suffix),
        Description=description,
        ServiceRole=GetAtt(role, "Arn"),
        Source=codebuild.Source(Type="CODEPIPELINE", BuildSpec=buildspec),
        Artifacts=codebuild.Artifacts(Type="CODEPIPELINE"),
        Environment=codebuild.Environment(
            Type="LINUX_CONTAINER", ComputeType="BUILD_GENERAL1_SMALL", Image=BUILD_IMAGE,
            EnvironmentVariables=[
                codebuild.EnvironmentVariable(Name=name, Type="PLAINTEXT", Value=value)
                for name, value in variables
            ] or Ref(AWS_NO_VALUE)),
        LogsConfig=codebuild.LogsConfig(CloudWatchLogs=codebuild.CloudWatchLogs(
            Status="ENABLED", GroupName=Ref(log_group))),
        TimeoutInMinutes=timeout_minutes,
    )


def deploy_project(topology: Topology) -> codebuild.Project:
    # The deploy step is the boto3 deployer every operator also runs; what varies per
    # account reaches it from this stack's parameters and the bootstrap stack.
    if topology.environments:
        # `deploy --env` takes the network from topology.yaml and, in another account,
        # that account's deploy role and bucket; the baseline stays in this account's.
        variables = [
            ("TEMPLATE_BUCKET", iam.bootstrap_export(topology, names.TEMPLATE_BUCKET_EXPORT))]
        return _small_project(
            iam.DEPLOY_PROJECT, "deploy",
            "python -m generator deploy --env $ENVIRONMENT: one environment (the action "
            "says which), callees first",
            iam.DEPLOY_STEP_ROLE, DEPLOY_BUILDSPEC, iam.DEPLOY_LOG_GROUP, variables,
            timeout_minutes=480)
    variables = [
        ("VPC_ID", Ref(cluster_stack.VPC)),
        ("PRIVATE_SUBNET_IDS", Join(",", Ref(cluster_stack.PRIVATE_SUBNETS))),
        ("PUBLIC_SUBNET_IDS", Join(",", Ref(cluster_stack.PUBLIC_SUBNETS))),
        ("DEPLOY_ROLE_ARN", iam.bootstrap_export(topology, names.DEPLOY_ROLE_EXPORT)),
        ("TEMPLATE_BUCKET", iam.bootstrap_export(topology, names.TEMPLATE_BUCKET_EXPORT)),
    ]
    return _small_project(
        iam.DEPLOY_PROJECT, "deploy",
        "python -m generator deploy: prune removed services, then the cluster, the network "
        "stacks and every service, callees first",
        iam.DEPLOY_STEP_ROLE, DEPLOY_BUILDSPEC, iam.DEPLOY_LOG_GROUP, variables,
        # A first deploy of 300 services is modelled at about 90 minutes (README, "Deploy").
        timeout_minutes=480)


def verify_project() -> codebuild.Project:
    return _small_project(
        iam.VERIFY_PROJECT, "verify",
        "python -m generator verify: stacks complete, services stable, every discovery "
        "name healthy in Cloud Map",
        iam.VERIFY_ROLE, VERIFY_BUILDSPEC, iam.VERIFY_LOG_GROUP)
