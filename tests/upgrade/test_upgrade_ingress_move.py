"""Moving the caller rules from the service stacks into the ingress stacks (issue 14,
item 1), as check-upgrade models it, over the templates of the last release that kept
them in the service stack (tests/fixtures/rules-in-service-stack).

EC2 refuses a rule a group already has (InvalidPermission.Duplicate; the model's
`duplicate-rule`, and moto's EC2 in tests/ops/test_ops_ingress_move.py), so an ingress
stack can add a service's rules only after its service stack gave them up.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from generator import params, topology as topology_module, upgrade

REPO = Path(__file__).resolve().parents[2]
BEFORE = REPO / "tests" / "fixtures" / "rules-in-service-stack"
NOW = REPO / "templates"


@pytest.fixture(scope="module")
def report() -> upgrade.UpgradeReport:
    return upgrade.plan_upgrade(BEFORE, NOW)


def test_the_fixture_is_the_old_layout():
    files = upgrade.read_templates_dir(BEFORE)
    assert "AWS::LanguageExtensions" in files.template("service.yaml").transforms
    assert files.template("ingress.yaml") is None
    assert "Callers" in files.params["server"]["Parameters"]


def test_the_move_deploys_with_no_predicted_failure(report):
    assert [finding.line() for finding in report.failures] == []


def test_each_ingress_stack_is_created_right_after_its_service_stack_gave_up_the_rules(
        report):
    order = [(op.stack, op.action) for op in report.operations]
    for service in ("server", "client"):
        stack, ingress = f"demo-{service}", f"demo-{service}-ingress"
        position = order.index((ingress, "create"))
        assert order[position - 1] == (stack, "update"), order
        before = report.operation(stack)
        assert before.by == "deployer"


def test_the_rules_end_up_in_the_ingress_stacks_only():
    account = upgrade.deploy_from_scratch(upgrade.read_templates_dir(BEFORE))
    old_rules = {logical for logical, resource in account.stacks["demo-server"].resources.items()
                 if resource.type == "AWS::EC2::SecurityGroupIngress"}
    assert old_rules == {"CallerIngressclient"}
    new = upgrade.read_templates_dir(NOW)
    deployment = upgrade.read_deployment(new)
    for request in upgrade._all_requests(new, deployment, upgrade.Environment(), account,
                                         None, None):
        account.apply(request, by_s3=True)
    rules = {name: {logical for logical, resource in stack.resources.items()
                    if resource.type == "AWS::EC2::SecurityGroupIngress"}
             for name, stack in account.stacks.items()}
    assert rules["demo-server"] == rules["demo-client"] == set()
    assert rules["demo-server-ingress"] == {"CallerIngressclient"}
    assert rules["demo-client-ingress"] == {"CallerIngressserver"}


def test_an_ingress_stack_created_first_is_predicted_to_fail():
    """The negative control: the naive order, every ingress stack before the services."""
    account = upgrade.deploy_from_scratch(upgrade.read_templates_dir(BEFORE))
    new = upgrade.read_templates_dir(NOW)
    values = {"AppName": "demo", "ServiceName": "server", "ContainerPort": "8080",
              "Callers": "client", "Callees": "8080:client", "DiscoveryName": "server"}
    operation = account.apply(upgrade.StackRequest(
        "deploy", "demo-server-ingress", "naive", new.template("ingress.yaml"), values,
        {"app": "demo", "kind": "ingress", "service": "server"}), by_s3=True)
    assert [f.rule for f in operation.failures] == ["duplicate-rule"]
    assert "demo-server" in operation.failures[0].message


def test_the_models_callers_are_the_deployers():
    """The model reads Callers back from the params files' PeerUrls; the deployer takes
    them from topology.yaml (generator.params). Differential: both agree on every service
    of a topology with mutual callers, a service nobody calls and a public one."""
    from tests.workloads.workloads_kit import WORKLOADS_TOPOLOGY

    topology = topology_module.parse(WORKLOADS_TOPOLOGY, "topology.yaml")
    files = upgrade.TemplatesDir(NOW, {}, {
        s.name: {"Parameters": params.parameters(topology, s)} for s in topology.services})
    deployment = upgrade.Deployment("NEW", topology.app, f"{topology.app}-pipeline", None, (),
                                    tuple(s.name for s in topology.services))
    model = upgrade._DeployerModel(files, deployment, upgrade.Environment())
    for service in topology.services:
        expected = params.ingress_parameters(topology, service)
        expected.pop("AppName"), expected.pop("ServiceName")
        assert model.ingress_values(service.name) == expected, service.name
