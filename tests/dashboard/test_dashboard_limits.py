"""CloudWatch's dashboard limits at generate time: the 300-service topology is split into
dashboards that each stay inside every limit, a service with more callers than a graph
holds gets its graphs split, and a limit that cannot be met is one line, exit 2.

Limits (generator.awsfacts.quotas): "Up to 500 widgets per dashboard. Up to 500 metrics
per dashboard widget. Up to 2500 metrics per dashboard, across all widgets"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html);
the body's size is an assumption (1 MB), since AWS states none."""
from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from benchmarks.topologies import layered_topology
from generator import cli, dashboard, plan, topology as topology_module
from generator.awsfacts import quotas


def counted(content: bytes) -> dict[str, int]:
    """What CloudWatch counts in one body, from its bytes alone."""
    body = json.loads(content)
    per_widget = [len(w["properties"].get("metrics", [])) for w in body["widgets"]]
    return {"bytes": len(content), "widgets": len(body["widgets"]),
            "metrics": sum(per_widget), "widest": max(per_widget)}


@pytest.fixture(scope="module")
def scale():
    text = yaml.safe_dump(layered_topology(300), sort_keys=False)
    return topology_module.parse(text, "topology.yaml")


@pytest.fixture(scope="module")
def scale_files(scale):
    return dashboard.render(scale)


def test_300_services_split_into_dashboards_each_inside_every_limit(scale_files):
    assert list(scale_files) == ["dashboards/scale.json"] + [
        f"dashboards/scale_{n}.json" for n in range(2, len(scale_files) + 1)]
    assert len(scale_files) > 1  # 300 rows of 5 widgets cannot fit 500 widgets
    for relative, content in scale_files.items():
        found = counted(content)
        assert found["widgets"] <= quotas.WIDGETS_PER_DASHBOARD.limit, relative
        assert found["metrics"] <= quotas.METRICS_PER_DASHBOARD.limit, relative
        assert found["widest"] <= quotas.METRICS_PER_DASHBOARD_WIDGET.limit, relative
        assert found["bytes"] <= quotas.DASHBOARD_BODY_BYTES.limit, relative
    dashboard.check(scale_files)  # the generate-time check agrees


def test_the_split_keeps_every_service_once_in_deploy_order(scale, scale_files):
    services = []
    for content in scale_files.values():
        services += [w["properties"]["markdown"].splitlines()[0][4:]
                     for w in json.loads(content)["widgets"][1:]
                     if w["properties"].get("markdown", "").startswith("### ")]
    assert services == list(plan.build(scale).order)


def test_the_hubs_55_callers_each_have_a_line(scale, scale_files):
    hub = scale.service("auth")
    callers = {line[5] for content in scale_files.values()
               for w in json.loads(content)["widgets"] if w["type"] == "metric"
               for line in w["properties"]["metrics"]
               if line[1] == "RequestCount" and len(line) > 8
               and line[6] == "TargetDiscoveryName"
               and line[7] == hub.discovery_name}
    assert callers == {s.name for s in scale.callers(hub)} and len(callers) == 55


def test_each_header_names_every_dashboard_of_the_deployment(scale_files):
    names = [relative.split("/")[1].removesuffix(".json") for relative in scale_files]
    for content in scale_files.values():
        header = json.loads(content)["widgets"][0]["properties"]["markdown"]
        assert all(f"`{name}`" in header for name in names)


HUB = """\
app: shop
namespace: shop.local
services:
  hub: {port: 8080}
  a: {port: 8080, calls: [hub]}
  b: {port: 8080, calls: [hub]}
  c: {port: 8080, calls: [hub]}
  d: {port: 8080, calls: [hub]}
  e: {port: 8080, calls: [hub]}
"""


def test_more_callers_than_a_graph_holds_splits_the_graph_and_keeps_every_caller():
    hub = topology_module.parse(HUB, "topology.yaml")
    bounds = dataclasses.replace(dashboard.limits(), metrics_per_widget=4)
    (_, body), = dashboard.build(hub, bounds)
    requests = [w for w in body["widgets"] if w.get("properties", {}).get("title", "")
                .startswith("hub: requests")]
    # The every-caller line and 5 callers: 6 lines, 4 a graph.
    assert [w["properties"]["title"] for w in requests] == ["hub: requests (1/2)",
                                                            "hub: requests (2/2)"]
    lines = [line for w in requests for line in w["properties"]["metrics"]]
    assert [len(w["properties"]["metrics"]) for w in requests] == [4, 2]
    assert [line[-1]["label"] for line in lines] == ["all callers"] + [
        f"from {name}" for name in "abcde"]
    dashboard.check(dashboard.render(hub, bounds), bounds)


def test_a_dashboard_past_a_limit_is_refused_in_one_line_naming_the_file():
    body = {"widgets": [{"type": "text", "x": 0, "y": i, "width": 1, "height": 1,
                         "properties": {"markdown": "x"}} for i in range(501)]}
    with pytest.raises(dashboard.DashboardQuotaError) as raised:
        dashboard.check({"dashboards/shop.json": dashboard.body_bytes(body)})
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("dashboards/shop.json: 501 widgets per dashboard, over 500")
    assert quotas.CLOUDWATCH_QUOTAS in message


def test_generate_refuses_a_row_past_the_limits_in_one_line_and_writes_nothing(
        tmp_path, monkeypatch, capsys):
    """A service whose row alone needs more metrics than a dashboard holds: with the quota
    lowered to 10, the hub's row (3 graphs of 6 lines and its tasks: 19) cannot fit."""
    monkeypatch.setattr(quotas, "METRICS_PER_DASHBOARD",
                        dataclasses.replace(quotas.METRICS_PER_DASHBOARD, limit=10))
    (tmp_path / "topology.yaml").write_text(HUB, encoding="utf-8")
    out = tmp_path / "out" / "templates"
    code = cli.main(["generate", "--topology", str(tmp_path / "topology.yaml"),
                     "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "services.hub" in err and "19 metrics per dashboard, over 10" in err
    assert not out.exists()


def test_the_readmes_split_figures_are_what_generate_makes(scale_files):
    """README, "Dashboard": the table of dashboards at 300 services."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Dashboard", 1)[1].split("\n### ", 1)[0]
    for relative, content in scale_files.items():
        name = relative.split("/")[1].removesuffix(".json")
        found = counted(content)
        body = json.loads(content)
        services = sum(1 for w in body["widgets"]
                       if w["properties"].get("markdown", "").startswith("### "))
        row = (f"| `{name}` | {services} | {found['widgets']} | {found['metrics']:,} | "
               f"{found['bytes']:,} |")
        assert row in section, row
    assert f"it takes **{len(scale_files)} dashboards**" in section
