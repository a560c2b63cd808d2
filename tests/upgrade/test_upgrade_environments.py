"""Environments made the cluster and network templates take the app and namespace as
parameters; a deployment made before must upgrade in place (nothing replaced: the stand-in
group for no callers is imported by the ingress stack of `web`, nobody's callee)."""
from __future__ import annotations

from pathlib import Path

from generator import render, topology, upgrade

BEFORE = Path(__file__).resolve().parents[1] / "fixtures" / "before-environments"


def test_a_deployment_from_before_environments_upgrades_in_place(tmp_path):
    now = tmp_path / "templates"
    render.write(now, render.render(topology.load(BEFORE / "topology.yaml")))
    report = upgrade.plan_upgrade(BEFORE / "templates", now)
    assert [f.line() for f in report.failures] == []
    assert {op.stack: op.replaced for op in report.operations if op.replaced} == {}
    assert {name for op in report.operations for name in op.exports_changed} == set()
    cluster = report.operation("shop-cluster")
    assert cluster.action == "update"  # the new parameters, same resolved values
