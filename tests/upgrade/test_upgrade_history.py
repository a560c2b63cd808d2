"""The acceptance history (issue 8), rendered by this branch's generator: every step,
deployed over the one before, is predicted to succeed."""
from __future__ import annotations

import pytest

from generator import upgrade

from upgrade_fixtures import HISTORY

STEPS = [f"{before} -> {after}" for (before, _), (after, _) in zip(HISTORY, HISTORY[1:])]


@pytest.mark.parametrize("step", range(len(STEPS)), ids=STEPS)
def test_each_step_of_the_history_deploys(history_dirs, step):
    (_, before), (_, after) = history_dirs[step], history_dirs[step + 1]
    report = upgrade.plan_upgrade(before, after)
    assert report.new_mode == "NEW"
    assert [finding.line() for finding in report.failures] == []


def test_a_removed_service_is_deleted_before_anything_it_depends_on_changes(history_dirs):
    (_, with_client), (_, without_client) = history_dirs[1], history_dirs[2]
    report = upgrade.plan_upgrade(with_client, without_client)
    order = [(op.stack, op.action) for op in report.operations]
    position = {stack: index for index, (stack, _) in enumerate(order)}
    assert order[position["demo-client"]] == ("demo-client", "delete")
    assert order[position["demo-client-network"]] == ("demo-client-network", "delete")
    # The service stack goes first; its network stack (whose export the callee's old rule
    # imports) only after the callee's stack no longer imports it.
    assert position["demo-client"] < position["demo-cluster"] < position["demo-server"] \
        < position["demo-client-network"]


def test_adding_fifty_services_then_removing_forty_nine(history_dirs):
    (_, fifty), (_, one) = history_dirs[5], history_dirs[6]
    report = upgrade.plan_upgrade(fifty, one)
    deleted = {op.stack for op in report.operations if op.action == "delete"}
    assert len(deleted) == 3 * 49  # each removed service: its service, ingress and network stacks
    assert "demo-svc01" not in deleted


def test_subnets_change_as_an_ordinary_update(history_dirs):
    (_, seed) = history_dirs[0]
    report = upgrade.plan_upgrade(seed, seed, new_environment=upgrade.Environment(
        private_subnets="subnet-other-a,subnet-other-b"))
    assert report.failures == []
    assert report.operation("demo-server").action == "update"  # Subnets passed again


def test_a_new_vpc_is_predicted_to_fail(history_dirs):
    (_, seed) = history_dirs[0]
    report = upgrade.plan_upgrade(seed, seed, new_environment=upgrade.Environment(
        vpc_id="vpc-99999999"))
    rules = {(f.stack, f.rule) for f in report.failures}
    # The namespace is replaced (Vpc is create-only) under the same Name, and the VpcId
    # and namespace exports in use change: delete the app's stacks and deploy again.
    assert ("demo-cluster", "named-replacement") in rules
    assert ("demo-cluster", "export-in-use") in rules
    assert any("demo-cluster-VpcId" in f.message for f in report.failures)
