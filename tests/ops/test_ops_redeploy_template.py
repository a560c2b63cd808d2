"""Issue 14, finding 1: the deployer never sends UsePreviousTemplate.

service.yaml carries `Transform: AWS::LanguageExtensions`, and AWS says: "When using
templates with the AWS::LanguageExtensions transform, provide the template instead of using
UsePreviousTemplate to ensure new parameter values ... are applied correctly" (UpdateStack's
UsePreviousTemplate; transform-aws-languageextensions.html, Remarks). On main the rollout
rule's redeploy (a new DeploymentNonce) sent UsePreviousTemplate, so on AWS it could come
back "no changes" and count as a success.

Every CreateChangeSet the command sends is recorded from botocore's `provide-client-params`
event, and every DescribeChangeSet answer from `after-call`, on the clients the command
creates (generator.ops.aws.Aws.client).
"""
from __future__ import annotations

import inspect
import json

import pytest

import generator.ops.aws as aws_module
from generator import plan, rollout
from generator.ops import stackflow
from tests.ops.test_ops_deploy import parameters, stack_results

NONCE = "DeploymentNonce"


@pytest.fixture
def change_sets(monkeypatch) -> dict[str, list]:
    """'created': CreateChangeSet arguments in order; 'described': DescribeChangeSet answers."""
    recorded: dict[str, list] = {"created": [], "described": []}
    real_client = aws_module.Aws.client

    def created(params, **_):
        recorded["created"].append(dict(params))

    def described(parsed, **_):
        recorded["described"].append(parsed)

    def client(self, service):
        made = real_client(self, service)
        made.meta.events.register("provide-client-params.cloudformation.CreateChangeSet",
                                  created)
        made.meta.events.register("after-call.cloudformation.DescribeChangeSet", described)
        return made

    monkeypatch.setattr(aws_module.Aws, "client", client)
    return recorded


def _nonce_of(arguments: dict) -> str | None:
    for parameter in arguments["Parameters"]:
        if parameter["ParameterKey"] == NONCE:
            return parameter.get("ParameterValue")
    return None


def _redeploys(project, change_sets) -> dict[str, dict]:
    """Stack -> the CreateChangeSet arguments that set the rollout nonce on it."""
    topology = project.topology
    deploy_plan = plan.build(topology)
    found = {}
    for arguments in change_sets["created"]:
        service = arguments["StackName"].removeprefix("shop-")
        if service in ("server", "client") and _nonce_of(arguments) == rollout.nonce(
                topology, deploy_plan, service):
            found[arguments["StackName"]] = arguments
    return found


def _statuses(change_sets, stack: str) -> list[str]:
    """The settled status of each change set made for `stack`, in order. moto lists no
    resource change for a parameter-only update, so "not empty" is read as AWS reports an
    empty one: a FAILED change set saying it "didn't contain changes" (stackflow)."""
    return [answer["Status"] for answer in change_sets["described"]
            if answer.get("StackName") == stack
            and answer["Status"] not in stackflow.CHANGE_SET_PENDING]


def test_the_redeploy_sends_the_template_and_its_change_set_is_not_empty(
        project, run, boto, change_sets):
    code, out, _ = run(project.first_deploy_argv())

    assert code == 0
    assert all("UsePreviousTemplate" not in arguments for arguments in change_sets["created"])
    redeploys = _redeploys(project, change_sets)
    assert set(redeploys) == {"shop-server", "shop-client"}
    body = (project.templates / "service.yaml").read_text(encoding="utf-8")
    for stack, arguments in redeploys.items():
        assert arguments["ChangeSetType"] == "UPDATE"
        assert arguments["TemplateBody"] == body
        assert arguments["Tags"], stack  # the stack's tags go with it, as on every update
        # The nonce's change set was made and executed (not "no changes"): the stack has it.
        assert _statuses(change_sets, stack) == ["CREATE_COMPLETE", "CREATE_COMPLETE"], stack
        assert stack_results(out)[stack] == "updated"
        assert parameters(boto, stack)[NONCE] == _nonce_of(arguments)


def test_a_big_service_template_is_redeployed_from_its_s3_url(
        project, run, boto, change_sets, monkeypatch, moto):
    """Past the inline limit, the redeploy uses the uploaded template's URL, as the first
    update does."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.replace("127.0.0.1", "localhost"))
    boto("s3").create_bucket(Bucket="shop-templates")
    service = json.loads((project.templates / "service.yaml").read_text())
    service["Metadata"] = {"Padding": ["x" * 1000] * 60}
    (project.templates / "service.yaml").write_text(json.dumps(service), encoding="utf-8")

    code, _, _ = run(project.first_deploy_argv("--template-bucket", "shop-templates"))

    assert code == 0
    assert all("UsePreviousTemplate" not in arguments for arguments in change_sets["created"])
    redeploys = _redeploys(project, change_sets)
    assert set(redeploys) == {"shop-server", "shop-client"}
    for stack, arguments in redeploys.items():
        assert "/shop-templates/templates/" in arguments["TemplateURL"], stack
        assert "TemplateBody" not in arguments
        assert parameters(boto, stack)[NONCE] == _nonce_of(arguments)


def test_stackflow_has_no_use_previous_template_path():
    """A request always carries its template: nothing in the flow can ask for the previous
    one."""
    assert "UsePreviousTemplate" not in inspect.getsource(stackflow).replace(
        "never UsePreviousTemplate", "")
    with pytest.raises(TypeError):
        stackflow.StackRequest("shop-server", parameters={})  # type: ignore[call-arg]


def test_a_redeploy_that_comes_back_no_changes_fails_the_run(project, run, monkeypatch):
    """On main a "no changes" answer to the nonce's change set counted as success, so the
    callers kept tasks started before their callees' endpoints existed. CloudFormation's
    answer is stood in for (moto always applies the parameter)."""
    real_flow = stackflow.StackDeployer.flow

    def flow(self, request, stack, confirm=None, preview=False):
        nonce = request.parameters.get(NONCE)
        if stack is not None and isinstance(nonce, str) and nonce:
            self.reporter.line(request.stack_name, "no changes")
            return stackflow.StackOutcome(request.stack_name, "no changes")
        return (yield from real_flow(self, request, stack, confirm=confirm, preview=preview))

    monkeypatch.setattr(stackflow.StackDeployer, "flow", flow)

    code, out, _ = run(project.first_deploy_argv())

    assert code != 0
    # The first redeploy to fail stops the run: the other is not started after it.
    results = [stack_results(out)[stack] for stack in ("shop-server", "shop-client")]
    assert results.count("failed") == 1, results
    assert "changed nothing, so no new deployment was forced" in out
