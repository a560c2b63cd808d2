"""templates/dashboards/ as golden files: `generate --check` sees a stale or orphaned
dashboard, and `generate` removes the dashboards nothing makes any more (an environment
removed, or fewer dashboards after a split), as it does params files."""
from __future__ import annotations

import dataclasses

from generator import cli, render, topology as topology_module
from generator.awsfacts import quotas
from tests.dashboard.test_dashboard_limits import HUB


def generate(tmp_path, text: str, *extra: str) -> int:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "topology.yaml").write_text(text, encoding="utf-8")
    return cli.main(["generate", "--topology", str(tmp_path / "topology.yaml"),
                     "--out", str(tmp_path / "templates"), *extra])


def dashboards(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "templates" / "dashboards").glob("*.json"))


def test_a_removed_environments_dashboard_is_stale_then_removed(tmp_path, two_environments_text,
                                                                 capsys):
    assert generate(tmp_path, two_environments_text) == 0
    assert dashboards(tmp_path) == ["shop-production.json", "shop-staging.json"]
    only_staging = two_environments_text.split("  production:\n")[0]
    (tmp_path / "topology.yaml").write_text(only_staging, encoding="utf-8")
    files = render.render(topology_module.load(tmp_path / "topology.yaml"))
    assert "dashboards/shop-production.json" in render.stale_files(tmp_path / "templates", files)
    capsys.readouterr()
    assert generate(tmp_path, only_staging, "--check") == 1
    assert "dashboards/shop-production.json: out of date" in capsys.readouterr().err
    assert generate(tmp_path, only_staging) == 0
    assert dashboards(tmp_path) == ["shop-staging.json"]
    assert generate(tmp_path, only_staging, "--check") == 0


def test_fewer_dashboards_after_a_split_removes_the_extra_one(tmp_path, monkeypatch):
    small = dataclasses.replace(quotas.METRICS_PER_DASHBOARD, limit=25)
    monkeypatch.setattr(quotas, "METRICS_PER_DASHBOARD", small)
    assert generate(tmp_path, HUB) == 0
    assert dashboards(tmp_path) == ["shop.json", "shop_2.json"]
    monkeypatch.undo()
    assert generate(tmp_path, HUB) == 0
    assert dashboards(tmp_path) == ["shop.json"]
    assert (tmp_path / "templates" / "params").is_dir()


def test_a_hand_edited_dashboard_is_stale(tmp_path):
    assert generate(tmp_path, HUB) == 0
    path = tmp_path / "templates" / "dashboards" / "shop.json"
    path.write_text(path.read_text().replace('"p99"', '"Average"'), encoding="utf-8")
    files = render.render(topology_module.load(tmp_path / "topology.yaml"))
    assert render.stale_files(tmp_path / "templates", files) == ["dashboards/shop.json"]


def test_changes_names_the_dashboards_created_changed_and_deleted(tmp_path, monkeypatch,
                                                                  two_environments_text):
    """For check-upgrade: one deployment's dashboards, old templates against new."""
    from generator import dashboard

    old, new = tmp_path / "old", tmp_path / "new"
    small = dataclasses.replace(quotas.METRICS_PER_DASHBOARD, limit=25)
    monkeypatch.setattr(quotas, "METRICS_PER_DASHBOARD", small)
    assert generate(old, HUB) == 0  # shop, shop_2
    monkeypatch.undo()
    assert generate(new, HUB.replace("e: {port: 8080, calls: [hub]}", "e: {port: 8080}")) == 0
    assert dashboard.changes(old / "templates", new / "templates", "shop") == [
        ("shop", "changed"), ("shop_2", "deleted")]
    assert dashboard.changes(new / "templates", new / "templates", "shop") == []
    assert generate(tmp_path / "envs", two_environments_text) == 0
    assert dashboard.changes(new / "templates", tmp_path / "envs" / "templates",
                             "shop-staging") == [("shop-staging", "created")]
