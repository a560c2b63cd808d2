"""Issue 18, item 2: a stack whose deployed template, parameter values and tags are this
run's gets no change set. Against moto, with the calls recorded on the client: a no-op
redeploy makes none, a params change makes one, a console edit of a topology-owned value
is still reverted, an operator-owned one is kept without a change set."""
from __future__ import annotations

import json

import botocore.client
import pytest

from generator.ops.report import Reporter
from generator.ops.stackflow import PREVIOUS, StackDeployer, StackRequest
from tests.ops.test_ops_deploy import console_update, parameters, stack_results

SERVICES = ("store", "cache", "server", "client")


@pytest.fixture
def calls(monkeypatch):
    """Every CloudFormation operation the run makes: (operation, stack name or None)."""
    recorded = []
    real = botocore.client.BaseClient._make_api_call

    def spy(self, operation, params):
        if self.meta.service_model.service_name == "cloudformation":
            name = params.get("StackName")
            if isinstance(name, str) and name.startswith("arn:"):
                name = name.split("/")[1]
            recorded.append((operation, name))
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    return recorded


def change_sets(recorded) -> list[str]:
    return [stack for operation, stack in recorded if operation == "CreateChangeSet"]


def test_a_redeploy_without_changes_makes_no_change_set(project, run, calls):
    assert run(project.first_deploy_argv())[0] == 0
    calls.clear()

    code, out, err = run(project.deploy_argv())

    assert (code, err) == (0, ""), out
    assert change_sets(calls) == []
    assert set(stack_results(out).values()) == {"no changes"}
    assert out.count("no change set") == 1 + 3 * len(SERVICES)  # cluster + 3 per service
    # Decided from DescribeStacks alone: the template by its fingerprint, no GetTemplate.
    assert not [c for c in calls if c[0] == "GetTemplate"]


def test_a_params_change_makes_exactly_one_change_set(project, run, calls, boto):
    assert run(project.first_deploy_argv())[0] == 0
    document = project.params("cache")
    document["Parameters"]["PeerTimeoutSeconds"] = "9"
    project.write_params("cache", document)
    calls.clear()

    code, out, _ = run(project.deploy_argv())

    assert code == 0, out
    assert change_sets(calls) == ["shop-cache"]
    assert parameters(boto, "shop-cache")["PeerTimeoutSeconds"] == "9"


def test_a_console_edit_of_a_topology_owned_value_is_still_reverted(project, run, calls,
                                                                    boto):
    assert run(project.first_deploy_argv())[0] == 0
    console_update(boto, "shop-server", PeerTimeoutSeconds="9")
    assert parameters(boto, "shop-server")["PeerTimeoutSeconds"] == "9"
    calls.clear()

    code, out, _ = run(project.deploy_argv())

    assert code == 0, out
    assert change_sets(calls) == ["shop-server"]
    assert parameters(boto, "shop-server")["PeerTimeoutSeconds"] == \
        project.params("server")["Parameters"]["PeerTimeoutSeconds"]


def test_an_operator_owned_edit_is_kept_without_a_change_set(project, run, calls, boto):
    assert run(project.first_deploy_argv())[0] == 0
    console_update(boto, "shop-store", EnableExecuteCommand="true")
    calls.clear()

    code, out, _ = run(project.deploy_argv())

    assert code == 0, out
    assert change_sets(calls) == []
    assert parameters(boto, "shop-store")["EnableExecuteCommand"] == "true"


def test_a_template_change_deploys_every_stack_of_that_template(project, run, calls):
    assert run(project.first_deploy_argv())[0] == 0
    path = project.templates / "ingress.yaml"
    document = json.loads(path.read_text())
    document["Outputs"]["Marker"] = {"Value": "v2"}
    path.write_text(json.dumps(document, indent=2))
    calls.clear()

    code, out, _ = run(project.deploy_argv())

    assert code == 0, out
    assert sorted(change_sets(calls)) == sorted(f"shop-{s}-ingress" for s in SERVICES)


@pytest.mark.parametrize("status", ["UPDATE_ROLLBACK_COMPLETE", "UPDATE_IN_PROGRESS",
                                    "IMPORT_COMPLETE"])
def test_only_a_settled_stack_is_ever_skipped(status):
    """No AWS call is made for such a stack: the client below has no endpoint at all."""
    deployer = StackDeployer(cfn=None, reporter=Reporter(open("/dev/null", "w")))
    stack = {"StackName": "s", "StackId": "arn:aws:cloudformation:::stack/s/1",
             "StackStatus": status, "Tags": [], "Parameters": []}
    assert deployer.unchanged(StackRequest("s", "body", {}), stack) is False


def test_a_changed_tag_role_or_parameter_set_is_not_skipped():
    deployer = StackDeployer(cfn=None, reporter=Reporter(open("/dev/null", "w")),
                             role_arn="arn:aws:iam::123456789012:role/deploy")
    stack = {"StackName": "s", "StackId": "arn:aws:cloudformation:::stack/s/1",
             "StackStatus": "UPDATE_COMPLETE", "RoleARN": "arn:aws:iam::123456789012:role/deploy",
             "Tags": [{"Key": "app", "Value": "shop"}],
             "Parameters": [{"ParameterKey": "A", "ParameterValue": "1"},
                            {"ParameterKey": "B", "ParameterValue": "2"}]}
    same = StackRequest("s", "body", {"A": "1", "B": PREVIOUS}, {"app": "shop"})
    cases = [
        StackRequest("s", "body", {"A": "1", "B": PREVIOUS}, {"app": "shop", "kind": "x"}),
        StackRequest("s", "body", {"A": "2", "B": PREVIOUS}, {"app": "shop"}),
        StackRequest("s", "body", {"A": "1"}, {"app": "shop"}),  # B would get its Default
    ]
    for request in cases:
        assert deployer.unchanged(request, stack) is False, request
    other_role = dict(stack, RoleARN="arn:aws:iam::123456789012:role/other")
    assert deployer.unchanged(same, other_role) is False


def test_a_hand_edited_template_keeps_a_stale_fingerprint_and_is_deployed(project, run,
                                                                          calls):
    """Editing a body without re-rendering leaves its Description's fingerprint as it was:
    the stacks are deployed, never taken for unchanged, and stay so on the next run."""
    assert run(project.first_deploy_argv())[0] == 0
    path = project.templates / "network.yaml"
    path.write_text(path.read_text().replace('"tasks"', '"tasks, edited"'))
    calls.clear()

    assert run(project.deploy_argv())[0] == 0
    assert sorted(change_sets(calls)) == sorted(f"shop-{s}-network" for s in SERVICES)
