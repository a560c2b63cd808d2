"""Issue 14 finding 8 against moto: the README's delete-and-recreate paths (a rebuilt
bootstrap stack; the old-layout upgrade, which deletes and recreates the pipeline stack; a
VPC move, which deletes the cluster, network and service stacks) recreate stacks under
their old names while every resource with DeletionPolicy Retain is still there
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html).
On main, the second create of the bootstrap stack failed with EntityAlreadyExists (policy
<app>-permissions-boundary) and of the pipeline stack with AlreadyExists (<app>/service).

moto cannot run the whole pipeline template (no CodeBuild or CodePipeline in its
CloudFormation), so each stack is stood in for by its own retained resources, with the
template's parameters and conditions: the resources whose names matter on a recreate."""
from __future__ import annotations

import json

import pytest

from generator import render

pytestmark = pytest.mark.integration

RETAIN = "Retain"


def _retained(resources: dict) -> dict:
    return {name: resource for name, resource in resources.items()
            if isinstance(resource, dict)
            and RETAIN in (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy"))}


def _stand_in(template: dict) -> tuple[dict, list[dict]]:
    """The template with only its retained resources, and a value for every parameter."""
    body = {key: template[key] for key in ("AWSTemplateFormatVersion", "Parameters",
                                           "Conditions") if key in template}
    body["Resources"] = _retained(template["Resources"])
    parameters = [{"ParameterKey": key, "ParameterValue": "x"}
                  for key, spec in template.get("Parameters", {}).items()
                  if "Default" not in spec]
    return body, parameters


def _stack_names(topology) -> dict[str, str]:
    return {"bootstrap.yaml": topology.bootstrap_stack_name,
            "pipeline.yaml": topology.pipeline_stack_name,
            "cluster.yaml": topology.cluster_stack_name}


def test_every_stack_with_retained_resources_can_be_recreated(project, boto):
    cfn = boto("cloudformation")
    documents = render.render_with_documents(project.topology)[1]
    walked = []
    for template_name, stack_name in _stack_names(project.topology).items():
        body, parameters = _stand_in(documents[template_name])
        if not body["Resources"]:
            continue
        walked.append(template_name)
        for attempt in ("create", "recreate"):
            cfn.create_stack(StackName=stack_name, TemplateBody=json.dumps(body),
                             Parameters=parameters, Capabilities=["CAPABILITY_NAMED_IAM"])
            status = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
            assert status == "CREATE_COMPLETE", f"{attempt} {stack_name}: {status}"
            cfn.delete_stack(StackName=stack_name)
    assert walked == ["bootstrap.yaml", "pipeline.yaml"]
    # Both generations are still there: the first was retained, not reused.
    repositories = boto("ecr").describe_repositories()["repositories"]
    assert len([r for r in repositories if r["repositoryName"].startswith("shop/service-")]) == 2
    boundaries = [p for p in boto("iam").list_policies(Scope="Local")["Policies"]
                  if p["PolicyName"].startswith("shop-permissions-boundary-")]
    assert len(boundaries) == 2


def test_the_stacks_a_vpc_move_recreates_retain_nothing(project):
    """The VPC move deletes the cluster, network and service stacks; none of them keeps a
    resource behind, so their recreate meets nothing."""
    documents = render.render_with_documents(project.topology)[1]
    for name in ("cluster.yaml", "network.yaml", "service.yaml"):
        if name in documents:
            assert not _retained(documents[name]["Resources"]), name
