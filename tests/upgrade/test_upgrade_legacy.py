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
