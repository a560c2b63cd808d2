"""check-upgrade's model of an operator's console update (issue 14, finding 1).

"When using templates with the AWS::LanguageExtensions transform, provide the template
instead of using UsePreviousTemplate to ensure new parameter values ... are applied
correctly" (UpdateStack's UsePreviousTemplate; transform-aws-languageextensions.html,
Remarks). service.yaml has no transform (the caller rules live in the ingress stacks), so
both console paths apply: "Use current template" and "Replace current template". On a
template with the transform, the model reports the first as one that may not apply.
"""
from __future__ import annotations

import pytest

from generator import upgrade

from upgrade_fixtures import SEED, render_topology, template

OLD_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo:previous"


@pytest.fixture
def seed(tmp_path):
    files = upgrade.read_templates_dir(render_topology(SEED, tmp_path / "templates"))
    return files, upgrade.deploy_from_scratch(files)


def _image(stack: upgrade.DeployedStack) -> str:
    definition = stack.resources["TaskDefinition"].properties
    return definition["ContainerDefinitions"][0]["Image"]


@pytest.mark.parametrize("changes", [
    {"ImageUri": OLD_IMAGE},
    {"DesiredCount": "3"},
    {"EnableExecuteCommand": "true"},
])
def test_a_console_update_with_the_template_provided_applies(seed, changes):
    files, account = seed
    before = dict(account.stacks["demo-server"].parameters)

    operation = upgrade.console_update(account, "demo-server", changes,
                                       files.template("service.yaml"))

    assert operation.action == "update"
    assert operation.failures == []
    after = account.stacks["demo-server"].parameters
    assert after == {**before, **changes}  # the change, and every other value kept
    if "ImageUri" in changes:
        assert _image(account.stacks["demo-server"]) == OLD_IMAGE
    if "DesiredCount" in changes:  # the seed's services do not scale: the count is used
        assert account.stacks["demo-server"].resources["Service"].properties[
            "DesiredCount"] == "3"


@pytest.mark.parametrize("changes", [
    {"ImageUri": OLD_IMAGE},
    {"DesiredCount": "3"},
    {"EnableExecuteCommand": "true"},
])
def test_use_current_template_on_the_service_stack_applies(seed, changes):
    """Way of working 3 as the README's console section gives it: Use current template."""
    files, account = seed
    assert files.template("service.yaml").transforms == ()
    before = dict(account.stacks["demo-server"].parameters)

    operation = upgrade.console_update(account, "demo-server", changes, None)

    assert operation.action == "update"
    assert operation.failures == []
    assert account.stacks["demo-server"].parameters == {**before, **changes}
    if "ImageUri" in changes:
        assert _image(account.stacks["demo-server"]) == OLD_IMAGE


def test_use_current_template_on_a_transformed_template_may_not_apply(seed):
    """The ingress stack keeps the transform: the deployer's alone, but if an operator
    did edit it with Use current template, the model says it may not apply."""
    files, account = seed
    assert "AWS::LanguageExtensions" in files.template("ingress.yaml").transforms
    before = dict(account.stacks["demo-server-ingress"].parameters)

    operation = upgrade.console_update(account, "demo-server-ingress",
                                       {"ContainerPort": "9090"}, None)

    assert [f.rule for f in operation.failures] == ["console-previous-template"]
    assert "ContainerPort" in operation.failures[0].message
    assert "may not apply" in operation.failures[0].message
    assert operation.failures[0].why == upgrade.DOC_PREVIOUS_TEMPLATE
    assert account.stacks["demo-server-ingress"].parameters == before  # nothing assumed


def test_use_current_template_without_a_transform_applies():
    account = upgrade.Account()
    document = {"Parameters": {"ImageUri": {"Type": "String"}, "Other": {"Type": "String"}},
                "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}
    account.apply(upgrade.StackRequest("deploy", "plain", "deployer", template(document),
                                       {"ImageUri": "a", "Other": "kept"}), by_s3=True)

    operation = upgrade.console_update(account, "plain", {"ImageUri": "b"}, None)

    assert operation.failures == []
    assert account.stacks["plain"].parameters == {"ImageUri": "b", "Other": "kept"}


def test_a_desired_count_edit_of_a_service_that_scales_does_not_reach_ecs(tmp_path):
    """Issue 14, finding 2: a service that scales has no DesiredCount on AWS::ECS::Service,
    so neither this edit nor any later update sets the count (autoscaling owns it)."""
    scaling = SEED.replace("desired_count: 1, calls: [client]",
                           "desired_count: 2, scaling: {min: 2, max: 6}, calls: [client]")
    files = upgrade.read_templates_dir(render_topology(scaling, tmp_path / "templates"))
    account = upgrade.deploy_from_scratch(files)

    operation = upgrade.console_update(account, "demo-server", {"DesiredCount": "5"},
                                       files.template("service.yaml"))

    assert operation.failures == []
    assert account.stacks["demo-server"].parameters["DesiredCount"] == "5"
    assert "DesiredCount" not in account.stacks["demo-server"].resources["Service"].properties
    assert account.stacks["demo-client"].resources["Service"].properties["DesiredCount"] == "1"
