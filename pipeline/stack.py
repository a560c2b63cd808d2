"""templates/pipeline.yaml: the CodePipeline that deploys the cluster and every service.

Stages: Source (a push to the branch, through a CodeConnections connection) -> Build
(buildspec.yml: tests, generate --check, check-upgrade, lint, hadolint, then each distinct
image built and pushed by pipeline/build_images.py) ->
UpdatePipeline (this template onto its own stack, so pipeline changes land by merge) ->
Approval (only when RequireApproval is "true") -> Deploy (one CodeBuild action running
`python -m generator deploy`: prune removed services, the cluster, then the network,
ingress and service stacks, each as soon as what it needs is done) -> Verify.

The template does not depend on the services: it is the same for 2 services or 300, so a
topology change never changes the pipeline, never changes its parameters, and never
approaches CodePipeline's stage and action quotas. With `environments:` (issue 16) the
Approval/Deploy/Verify stages give way to one stage per environment (pipeline.promotion),
the network comes from topology.yaml instead of this stack's parameters, and an
environment in another account brings the KMS key and resource policies of
pipeline.crossaccount; without them the template is what it always was.

The pieces: pipeline.storage (bucket, repository, artifact store), pipeline.builds (the
CodeBuild projects), pipeline.iam (the roles), pipeline.promotion (the environment
stages), pipeline.crossaccount (what another account is granted); this module assembles
the parameters, the stages and the template. The deploy order, the console-update
rule and the redeploy rule live in one place, the boto3 deployer, which the pipeline and
an operator run alike.
"""
from __future__ import annotations

from troposphere import (
    AWS_NO_VALUE, Equals, GetAtt, If, Join, Output, Parameter, Ref, Sub, Template,
)
from troposphere import codepipeline

from generator import names
from generator.stacks import cluster as cluster_stack
from generator.topology import Topology
from pipeline import crossaccount, iam, promotion
from pipeline.builds import (  # noqa: F401 (BUILDSPEC and the rest are read as stack.X)
    BUILD_IMAGE, BUILDSPEC, DEPLOY_BUILDSPEC, REPORTS, VERIFY_BUILDSPEC, build_project,
    deploy_project, log_groups, report_groups, verify_project,
)
from pipeline.storage import (
    artifact_bucket, artifact_bucket_policy, artifact_store, image_repository,
)

SOURCE_ARTIFACT = "SourceOutput"
BUILD_ARTIFACT = "BuildOutput"
# Written by buildspec.yml (pipeline/build_images.py) at the root of the build artifact:
# service -> image URI; the deploy step passes it to `generator deploy --images`.
IMAGES_FILE = "images.json"
PIPELINE_TEMPLATE = "templates/pipeline.yaml"
APPROVAL_REQUIRED = "ApprovalRequired"
CAPABILITIES = "CAPABILITY_IAM"
# Passed on to the cluster stack by the deploy step; the same set whatever the topology.
NETWORK_PARAMETERS = (cluster_stack.VPC, cluster_stack.PRIVATE_SUBNETS,
                      cluster_stack.PUBLIC_SUBNETS)
_LIST_PARAMETERS = (cluster_stack.PRIVATE_SUBNETS, cluster_stack.PUBLIC_SUBNETS)


def parameters(topology: Topology) -> list[Parameter]:
    source = [
        Parameter(
            "ConnectionArn", Type="String",
            AllowedPattern=r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):"
                           r"[a-z0-9-]+:[0-9]{12}:connection/[0-9a-f-]+$",
            Description="ARN of an AVAILABLE CodeConnections (CodeStar) connection to the "
                        "repository host; see the README's bootstrap section.",
            ConstraintDescription="must be a connection ARN",
        ),
        Parameter(
            "FullRepositoryId", Type="String", AllowedPattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
            Description="Repository as owner/name, e.g. my-org/ecs-service-connect-kit.",
            ConstraintDescription="must be owner/name",
        ),
        Parameter(
            "BranchName", Type="String", Default="main", MinLength=1, MaxLength=255,
            Description="A push to this branch starts the pipeline.",
        ),
    ]
    approval = [
        Parameter(
            "RequireApproval", Type="String", Default="false", AllowedValues=["true", "false"],
            Description="Stop for a manual approval after the build, before any stack "
                        "(except this pipeline) is touched.",
        ),
    ]
    network = [
        Parameter(
            cluster_stack.VPC, Type="AWS::EC2::VPC::Id",
            Description="Passed to the cluster stack: the VPC of the tasks and namespace.",
        ),
        Parameter(
            cluster_stack.PRIVATE_SUBNETS, Type="List<AWS::EC2::Subnet::Id>",
            Description="Passed to the cluster stack: private subnets of the tasks "
                        "(two Availability Zones at least).",
        ),
        Parameter(
            # Optional and always declared, so that the first public service (or the
            # removal of the last) never changes this template's parameters.
            cluster_stack.PUBLIC_SUBNETS, Type="CommaDelimitedList", Default="",
            AllowedPattern=r"^(subnet-[0-9a-f]{8,17})?$",
            Description="Passed to the cluster stack: public subnets for internet-facing "
                        "load balancers (two Availability Zones at least); empty while no "
                        "service is public.",
            ConstraintDescription="must be empty or subnet ids (subnet-...)",
        ),
    ]
    retention = [
        Parameter(
            "ImagesToKeep", Type="Number", Default=30, MinValue=5, MaxValue=1000,
            Description="The image repository keeps this many most recent images; a "
                        "rollback can only go back as far as this.",
        ),
        Parameter(
            "ArtifactRetentionDays", Type="Number", Default=30, MinValue=1, MaxValue=3650,
            Description="Days the artifact bucket keeps pipeline artifacts and build cache.",
        ),
    ]
    if topology.environments:
        # Each environment's approval and network are topology.yaml's.
        return source + retention
    return source + approval + network + retention


def interface(topology: Topology) -> dict:
    groups = [
        ("Source", ["ConnectionArn", "FullRepositoryId", "BranchName", "RequireApproval"]),
        ("Network (passed to the cluster stack)", list(NETWORK_PARAMETERS)),
        ("Retention", ["ImagesToKeep", "ArtifactRetentionDays"]),
    ]
    if topology.environments:
        groups = [("Source", ["ConnectionArn", "FullRepositoryId", "BranchName"]),
                  groups[2]]
    return {"AWS::CloudFormation::Interface": {"ParameterGroups": [
        {"Label": {"default": label}, "Parameters": members} for label, members in groups
    ]}}


# --- actions -----------------------------------------------------------------------------


def _artifacts(*names_: str) -> list[codepipeline.InputArtifacts]:
    return [codepipeline.InputArtifacts(Name=name) for name in names_]


def _cloudformation_action(topology: Topology, name: str, run_order: int,
                           configuration: dict) -> codepipeline.Actions:
    return codepipeline.Actions(
        Name=name,
        ActionTypeId=codepipeline.ActionTypeId(
            Category="Deploy", Owner="AWS", Provider="CloudFormation", Version="1"),
        InputArtifacts=_artifacts(BUILD_ARTIFACT),
        RunOrder=run_order,
        Configuration={
            "ActionMode": "CREATE_UPDATE",
            "RoleArn": iam.bootstrap_export(topology, names.DEPLOY_ROLE_EXPORT),
            **configuration,
        },
    )


def _json_sub(keys: tuple[str, ...]) -> Sub:
    """ParameterOverrides passing this stack's own parameters on, by name."""
    body = ",".join('"%s":"${%s}"' % (key, key) for key in keys)
    lists = {key: Join(",", Ref(key)) for key in keys if key in _LIST_PARAMETERS}
    return Sub("{%s}" % body, **lists) if lists else Sub("{%s}" % body)


# --- stages ------------------------------------------------------------------------------


def source_stage() -> codepipeline.Stages:
    return codepipeline.Stages(Name="Source", Actions=[codepipeline.Actions(
        Name="Source",
        ActionTypeId=codepipeline.ActionTypeId(
            Category="Source", Owner="AWS", Provider="CodeStarSourceConnection", Version="1"),
        OutputArtifacts=[codepipeline.OutputArtifacts(Name=SOURCE_ARTIFACT)],
        Configuration={
            "ConnectionArn": Ref("ConnectionArn"),
            "FullRepositoryId": Ref("FullRepositoryId"),
            "BranchName": Ref("BranchName"),
            "OutputArtifactFormat": "CODE_ZIP",
        },
        RunOrder=1,
    )])


def _codebuild_action(name: str, project: str, inputs: str, output: str | None = None,
                      category: str = "Build") -> codepipeline.Actions:
    return codepipeline.Actions(
        Name=name,
        ActionTypeId=codepipeline.ActionTypeId(
            Category=category, Owner="AWS", Provider="CodeBuild", Version="1"),
        InputArtifacts=_artifacts(inputs),
        OutputArtifacts=[codepipeline.OutputArtifacts(Name=output)] if output else Ref(AWS_NO_VALUE),
        Configuration={"ProjectName": Ref(project)},
        RunOrder=1,
    )


def build_stage(topology: Topology) -> codepipeline.Stages:
    action = _codebuild_action("Build", iam.BUILD_PROJECT, SOURCE_ARTIFACT, BUILD_ARTIFACT)
    if topology.environments:
        # Its exported variables (the reports' prefix) reach the approvals.
        action.Namespace = promotion.BUILD_NAMESPACE
        action.Configuration = promotion.build_action_configuration(iam.BUILD_PROJECT)
    return codepipeline.Stages(Name="Build", Actions=[action])


def update_pipeline_stage(topology: Topology) -> codepipeline.Stages:
    return codepipeline.Stages(Name="UpdatePipeline", Actions=[_cloudformation_action(
        topology, "UpdatePipeline", 1, {
            "StackName": Ref("AWS::StackName"),
            "TemplatePath": f"{BUILD_ARTIFACT}::{PIPELINE_TEMPLATE}",
            # The operator chose these at bootstrap; passing them back keeps them (a
            # parameter not passed would fall back to its Default, or fail without one).
            "ParameterOverrides": _json_sub(tuple(p.title for p in parameters(topology))),
            "Capabilities": CAPABILITIES,
        })])


def approval_stage():
    stage = codepipeline.Stages(Name="Approval", Actions=[codepipeline.Actions(
        Name="Approve",
        ActionTypeId=codepipeline.ActionTypeId(
            Category="Approval", Owner="AWS", Provider="Manual", Version="1"),
        Configuration={"CustomData": "Approve to deploy this commit's cluster and services."},
        RunOrder=1,
    )])
    return If(APPROVAL_REQUIRED, stage, Ref(AWS_NO_VALUE))


def deploy_stage() -> codepipeline.Stages:
    return codepipeline.Stages(Name="Deploy", Actions=[
        _codebuild_action("Deploy", iam.DEPLOY_PROJECT, BUILD_ARTIFACT)])


def verify_stage() -> codepipeline.Stages:
    # Last: a run is green only when every service is stable and reachable by its name.
    return codepipeline.Stages(Name="Verify", Actions=[
        _codebuild_action("Verify", iam.VERIFY_PROJECT, SOURCE_ARTIFACT, category="Test")])


def pipeline(topology: Topology) -> codepipeline.Pipeline:
    if topology.environments:
        stages = [source_stage(), build_stage(topology), update_pipeline_stage(topology),
                  *promotion.environment_stages(
                      topology, deploy_project=iam.DEPLOY_PROJECT,
                      verify_project=iam.VERIFY_PROJECT, artifact=BUILD_ARTIFACT,
                      bucket=iam.ARTIFACT_BUCKET)]
    else:
        stages = [source_stage(), build_stage(topology), update_pipeline_stage(topology),
                  approval_stage(), deploy_stage(), verify_stage()]
    return codepipeline.Pipeline(
        "Pipeline",
        PipelineType="V2",
        # One run at a time, in order. In SUPERSEDED mode stages are locked one run each and
        # a newer run overtakes an older one only between stages
        # (https://docs.aws.amazon.com/codepipeline/latest/userguide/concepts-how-it-works.html):
        # the newer Build's check-upgrade would read the baseline while the older run still
        # deploys over it, and the older Verify would overlap the newer Deploy. QUEUED runs
        # executions one by one in the order they were queued (V2 only, which this is:
        # https://docs.aws.amazon.com/codepipeline/latest/userguide/execution-modes.html).
        ExecutionMode="QUEUED",
        # When UpdatePipeline changes this pipeline, run the new definition on the commit.
        RestartExecutionOnUpdate=True,
        RoleArn=GetAtt(iam.PIPELINE_ROLE, "Arn"),
        ArtifactStore=artifact_store(topology),
        Triggers=[codepipeline.PipelineTriggerDeclaration(
            ProviderType="CodeStarSourceConnection",
            GitConfiguration=codepipeline.GitConfiguration(
                SourceActionName="Source",
                Push=[codepipeline.GitPushFilter(
                    Branches=codepipeline.GitBranchFilterCriteria(Includes=[Ref("BranchName")]))],
            ),
        )],
        Stages=stages,
    )


def outputs() -> list[Output]:
    return [
        Output("PipelineName", Value=Ref("Pipeline"), Description="The CodePipeline"),
        Output("ArtifactBucketName", Value=Ref(iam.ARTIFACT_BUCKET),
               Description="Pipeline artifacts and build cache"),
        Output("ImageRepositoryUri", Value=GetAtt(iam.IMAGE_REPOSITORY, "RepositoryUri"),
               Description="ECR repository of every image the pipeline builds: the default "
                           "app tagged <commit>, a build directory <slug>-<commit>"),
    ]


def build(topology: Topology) -> Template:
    template = Template(
        Description=f"{topology.app}: CodePipeline deploying the cluster and every service on "
                    "a merge (generated by python -m generator; do not edit)"
    )
    template.set_version("2010-09-09")
    template.set_metadata(interface(topology))
    template.add_parameter(parameters(topology))
    if topology.environments:
        for name, condition in crossaccount.conditions(topology).items():
            template.add_condition(name, condition)
        template.add_resource(crossaccount.artifact_key(topology))
    else:
        template.add_condition(APPROVAL_REQUIRED, Equals(Ref("RequireApproval"), "true"))
    for resource in (
        artifact_bucket(topology), artifact_bucket_policy(topology), image_repository(topology),
        *log_groups(), *report_groups(), build_project(topology), deploy_project(topology),
        verify_project(), iam.pipeline_role(topology), iam.build_role(topology),
        iam.deploy_step_role(topology), iam.verify_role(topology), pipeline(topology),
    ):
        template.add_resource(resource)
    template.add_output(outputs())
    return template
