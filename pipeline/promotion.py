"""The pipeline's stages after UpdatePipeline when topology.yaml has `environments:`.

One stage per environment, in promotion order, named Deploy-<env>: a manual approval
first when the environment says `approval: true`, then Deploy, then Verify. Every Deploy
and Verify runs the same two CodeBuild projects on the same BuildOutput artifact (the
checkout, the templates and images.json with digests, built once); what differs is the
ENVIRONMENT variable each action passes (the CodeBuild action's EnvironmentVariables,
https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-CodeBuild.html),
so the number of projects stays 3 whatever the number of environments.

The approval links the report the Build stage wrote for that environment in this run
(buildspec.yml: reports/approval-<env>.html copied to the artifact bucket under
approval-reports/<pipeline execution id>/). The prefix reaches the approval as a
variable the Build action exports (namespace BuildVariables, buildspec `exported-variables`):
variables configure actions with values known only during the run, a manual approval's
included (https://docs.aws.amazon.com/codepipeline/latest/userguide/reference-variables.html,
which points to its manual-approval example). The execution id itself reaches the Build
as #{codepipeline.PipelineExecutionId}, a variable of every pipeline, usable in any action
configuration (same page; https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_codepipeline.GlobalVariables.html).
"""
from __future__ import annotations

import json

from troposphere import Ref, Sub, codepipeline

from generator.topology import Topology
from generator.topology.model import Environment

# The Build action's namespace, and the variable buildspec.yml exports
# (`env: exported-variables`): the artifact bucket key prefix of this run's reports.
BUILD_NAMESPACE = "BuildVariables"
REPORTS_VARIABLE = "APPROVAL_REPORTS"
# Passed to the Build action, so buildspec.yml can file the reports under this run.
EXECUTION_ID_VARIABLE = "PIPELINE_EXECUTION_ID"
ENVIRONMENT_VARIABLE = "ENVIRONMENT"
ENVIRONMENTS_VARIABLE = "ENVIRONMENTS"


def stage_name(environment: Environment) -> str:
    return f"Deploy-{environment.name}"


def report_name(environment: Environment) -> str:
    return f"approval-{environment.name}.html"


def environment_names(topology: Topology) -> str:
    """The Build project's ENVIRONMENTS: names separated by spaces, for a shell loop."""
    return " ".join(e.name for e in topology.environments)


def action_variables(**variables: str) -> str:
    """A CodeBuild action's EnvironmentVariables configuration: a JSON array string."""
    return json.dumps([{"name": name, "value": value, "type": "PLAINTEXT"}
                       for name, value in variables.items()], separators=(",", ":"))


def build_action_configuration(project: str) -> dict:
    return {"ProjectName": Ref(project), "EnvironmentVariables": action_variables(
        **{EXECUTION_ID_VARIABLE: "#{codepipeline.PipelineExecutionId}"})}


def approval_action(environment: Environment, bucket: str) -> codepipeline.Actions:
    # The S3 console's page of the object (opened with the reviewer's own console
    # session; the bucket is private): works for as long as the artifacts are kept.
    key = "#{%s.%s}%s" % (BUILD_NAMESPACE, REPORTS_VARIABLE, report_name(environment))
    link = Sub("https://${AWS::Region}.console.aws.amazon.com/s3/object/${%s}"
               "?region=${AWS::Region}&prefix=%s" % (bucket, key))
    return codepipeline.Actions(
        Name="Approve",
        ActionTypeId=codepipeline.ActionTypeId(
            Category="Approval", Owner="AWS", Provider="Manual", Version="1"),
        Configuration={
            # The report's S3 address again, in the text AWS's own example resolves
            # variables in (reference-variables.html, manual approval example).
            "CustomData": Sub(
                f"Approve to deploy this run's build to {environment.name} (account "
                f"{environment.account}, {environment.region}). The link is this run's "
                "check-upgrade report for it (stacks created, updated, deleted, replacements, "
                "restarted callers): s3://${%s}/%s" % (bucket, key)),
            "ExternalEntityLink": link,
        },
        RunOrder=1,
    )


def _codebuild_action(name: str, project: str, artifact: str, category: str,
                      environment: Environment, run_order: int) -> codepipeline.Actions:
    return codepipeline.Actions(
        Name=name,
        ActionTypeId=codepipeline.ActionTypeId(
            Category=category, Owner="AWS", Provider="CodeBuild", Version="1"),
        InputArtifacts=[codepipeline.InputArtifacts(Name=artifact)],
        Configuration={"ProjectName": Ref(project), "EnvironmentVariables": action_variables(
            **{ENVIRONMENT_VARIABLE: environment.name})},
        RunOrder=run_order,
    )


def environment_stage(environment: Environment, *, deploy_project: str, verify_project: str,
                      artifact: str, bucket: str) -> codepipeline.Stages:
    actions = [approval_action(environment, bucket)] if environment.approval else []
    first = len(actions) + 1
    actions += [
        _codebuild_action("Deploy", deploy_project, artifact, "Build", environment, first),
        # Verify after Deploy, on the same artifact: what was deployed is what is checked.
        _codebuild_action("Verify", verify_project, artifact, "Test", environment, first + 1),
    ]
    return codepipeline.Stages(Name=stage_name(environment), Actions=actions)


def environment_stages(topology: Topology, **projects: str) -> list[codepipeline.Stages]:
    return [environment_stage(e, **projects) for e in topology.environments]
