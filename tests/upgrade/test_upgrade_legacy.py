"""The old design's failures, predicted from its own templates (tests/fixtures/legacy)."""
from __future__ import annotations

from generator import upgrade

from upgrade_fixtures import LEGACY


def failures(old: str, new: str, rule: str) -> list[upgrade.Finding]:
    report = upgrade.plan_upgrade(LEGACY / old, LEGACY / new)
    assert (report.old_mode, report.new_mode) == ("OLD", "OLD")
    return [f for f in report.failures if f.rule == rule]


def test_adding_the_first_public_service_breaks_update_pipeline():
    # The new pipeline.yaml requires PublicSubnetIds; the running definition's
    # UpdatePipeline action (seed's) does not pass it.
    found = failures("seed", "public", "parameter-required")
    assert [(f.stack, "PublicSubnetIds" in f.message) for f in found] == [
        ("demo-pipeline", True)]
    assert "must have values" in found[0].message


def test_removing_the_last_public_service_breaks_update_pipeline_the_other_way():
    # public's action passes PublicSubnetIds, which seed's pipeline.yaml does not declare.
    found = failures("public", "seed", "parameter-undeclared")
    assert [(f.stack, "PublicSubnetIds" in f.message) for f in found] == [
        ("demo-pipeline", True)]
    assert "do not exist in the template" in found[0].message


def test_removing_a_service_drops_exports_its_never_deleted_stack_still_imports():
    found = failures("trio", "seed", "export-in-use")
    assert [(f.stack, "demo-cluster-TaskSecurityGroup-audit" in f.message,
             "demo-audit" in f.message) for f in found] == [("demo-cluster", True, True)]
    report = upgrade.plan_upgrade(LEGACY / "trio", LEGACY / "seed")
    assert "demo-audit" not in {op.stack for op in report.operations}  # never deleted


def test_adding_a_private_service_deploys_in_the_old_design():
    report = upgrade.plan_upgrade(LEGACY / "seed", LEGACY / "trio")
    assert report.failures == []
    assert report.operation("demo-audit").action == "create"
    assert report.operation("demo-cluster").exports_added == [
        "demo-cluster-TaskSecurityGroup-audit"]


def test_the_same_templates_change_nothing():
    report = upgrade.plan_upgrade(LEGACY / "seed", LEGACY / "seed")
    assert report.failures == []
    assert {op.action for op in report.operations} == {"no-op"}


def test_the_first_deploy_of_the_new_design_over_the_old_one(history_dirs):
    # The migration itself: legacy seed (per-service exports in cluster.yaml) -> the same
    # topology rendered by this branch's generator. The deployer updates the cluster
    # before the service stacks, which still import the exports the new cluster drops.
    report = upgrade.plan_upgrade(LEGACY / "seed", history_dirs[0][1])
    assert (report.old_mode, report.new_mode) == ("OLD", "NEW")
    in_use = sorted(name for f in report.failures if f.rule == "export-in-use"
                    for name in ("demo-cluster-PrivateSubnetIds",
                                 "demo-cluster-TaskSecurityGroup-client",
                                 "demo-cluster-TaskSecurityGroup-server") if name in f.message)
    assert in_use == ["demo-cluster-PrivateSubnetIds", "demo-cluster-TaskSecurityGroup-client",
                      "demo-cluster-TaskSecurityGroup-server"]
    # The old UpdatePipeline action acts as the deploy role the new pipeline.yaml drops.
    notes = [f for op in report.operations for f in op.findings if not f.failure]
    assert [(f.stack, f.rule) for f in notes] == [("demo-pipeline", "own-role-deleted")]
