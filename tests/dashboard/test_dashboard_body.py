"""The dashboard body (generator.dashboard): one row per service in deploy order, its
incoming edges per caller, its running tasks; deterministic; one per environment.

Metric names and dimensions checked here are the ones of
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/available-metrics.html
(Service Connect: DiscoveryName on the service's own side, ServiceName=<caller> with
TargetDiscoveryName on the caller's side) and of
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Container-Insights-metrics-ECS.html
(RunningTaskCount by ClusterName, ServiceName)."""
from __future__ import annotations

import json

import pytest

from generator import dashboard, plan, render, topology as topology_module

# A cycle (server <-> client), a callee with two callers, discovery names that differ from
# the service names (so a dimension taking the wrong one is caught).
TOPOLOGY = """\
app: shop
namespace: shop.local
services:
  store:
    port: 8080
    discovery_name: store-db
  server:
    port: 8080
    calls: [store, client]
  client:
    port: 9090
    discovery_name: front
    calls: [server, store]
  batch:
    port: 7070
"""


@pytest.fixture
def shop():
    return topology_module.parse(TOPOLOGY, "topology.yaml")


def rows(body: dict) -> list[tuple[str, list[dict]]]:
    """(service, its widgets) for each row, by the text widget that opens it."""
    found: list[tuple[str, list[dict]]] = []
    for widget in body["widgets"][1:]:
        markdown = widget["properties"].get("markdown", "")
        if markdown.startswith("### "):
            found.append((markdown.splitlines()[0][4:], []))
        found[-1][1].append(widget)
    return found


def dimensions(line: list) -> dict[str, str]:
    """A metrics-array line's dimensions: [namespace, metric, name, value, ..., {options}]."""
    pairs = [item for item in line[2:] if not isinstance(item, dict)]
    return dict(zip(pairs[::2], pairs[1::2]))


def graph(row: list[dict], metric: str) -> list[list]:
    """Every line of `metric` in a row, across the widgets it is split into."""
    return [line for widget in row if widget["type"] == "metric"
            for line in widget["properties"]["metrics"] if line[1] == metric]


def test_one_row_per_service_in_deploy_order(shop):
    (name, body), = dashboard.build(shop)
    assert name == "shop"
    assert [service for service, _ in rows(body)] == list(plan.build(shop).order)
    # Rows go down the page in that order: each row starts below the previous one.
    tops = [min(w["y"] for w in widgets) for _, widgets in rows(body)]
    assert tops == sorted(tops) and len(set(tops)) == len(tops)


def test_a_row_is_the_service_and_its_endpoint_then_traffic_then_tasks(shop):
    (_, body), = dashboard.build(shop)
    row = dict(rows(body))["client"]
    text = row[0]["properties"]["markdown"]
    assert shop.endpoint(shop.service("client")) in text  # http://front.shop.local:9090
    assert "`python -m generator logs client`" in text  # what to run next, at 3 a.m.
    titles = [w["properties"]["title"] for w in row[1:]]
    assert titles == ["client: requests", "client: 5xx", "client: p99 latency (ms)",
                      "client: running tasks"]
    stats = [w["properties"]["stat"] for w in row[1:4]]
    assert stats == ["Sum", "Sum", "p99"]


@pytest.mark.parametrize("metric", ["RequestCount", "HTTPCode_Target_5XX_Count",
                                    "TargetResponseTime"])
def test_a_services_own_side_and_one_line_per_caller(shop, metric):
    (_, body), = dashboard.build(shop)
    lines = graph(dict(rows(body))["store"], metric)
    assert {line[0] for line in lines} == {"AWS/ECS"}
    own, *callers = lines
    # Every caller together: the target's answers are published on the callers' side
    # only, by TargetDiscoveryName alone (the series the service's own alarms read).
    assert dimensions(own) == {"TargetDiscoveryName": "store-db"}
    # Its callers, server and client, each on the caller's side of the edge.
    assert sorted(map(dimensions, callers), key=lambda d: d["ServiceName"]) == [
        {"ClusterName": "shop-cluster", "ServiceName": caller, "TargetDiscoveryName": "store-db"}
        for caller in ("client", "server")]
    assert [line[-1]["label"] for line in callers] == ["from client", "from server"]


def test_an_edge_appears_once_per_metric_in_its_callees_row(shop):
    (_, body), = dashboard.build(shop)
    edges = {(dimensions(line)["ServiceName"], dimensions(line)["TargetDiscoveryName"])
             for _, row in rows(body) for line in graph(row, "RequestCount")
             if "ServiceName" in dimensions(line)}
    discovery = {s.name: s.discovery_name for s in shop.services}
    assert edges == {(s.name, discovery[callee]) for s in shop.services for callee in s.calls}


def test_a_service_nobody_calls_has_only_its_own_side(shop):
    (_, body), = dashboard.build(shop)
    assert [dimensions(line) for line in graph(dict(rows(body))["batch"], "RequestCount")] == [
        {"TargetDiscoveryName": "batch"}]


def test_running_tasks_from_container_insights(shop):
    (_, body), = dashboard.build(shop)
    line, = graph(dict(rows(body))["server"], "RunningTaskCount")
    assert line[0] == "ECS/ContainerInsights"
    assert dimensions(line) == {"ClusterName": "shop-cluster", "ServiceName": "server"}


def test_widgets_stay_on_the_grid_and_never_overlap(shop):
    (_, body), = dashboard.build(shop)
    cells = set()
    for widget in body["widgets"]:
        assert 0 <= widget["x"] and widget["x"] + widget["width"] <= dashboard.GRID_WIDTH
        mine = {(widget["x"] + dx, widget["y"] + dy) for dx in range(widget["width"])
                for dy in range(widget["height"])}
        assert not cells & mine, widget
        cells |= mine


def test_the_header_says_it_is_generated_and_where_from(shop):
    (_, body), = dashboard.build(shop)
    header = body["widgets"][0]
    assert header["width"] == dashboard.GRID_WIDTH and (header["x"], header["y"]) == (0, 0)
    assert "templates/dashboards/shop.json" in header["properties"]["markdown"]
    assert "lost at the next deploy" in header["properties"]["markdown"]


def test_same_topology_same_bytes(shop):
    first = dashboard.render(shop)
    again = dashboard.render(topology_module.parse(TOPOLOGY, "topology.yaml"))
    assert first == again and list(first) == ["dashboards/shop.json"]
    # The bytes are the body: valid JSON, one widget a line.
    body = json.loads(first["dashboards/shop.json"])
    assert first["dashboards/shop.json"].decode().count("\n") == len(body["widgets"]) + 6


def test_rendered_with_the_templates(shop):
    files = render.render(shop)
    assert files["dashboards/shop.json"] == dashboard.render(shop)["dashboards/shop.json"]


def test_without_environments_no_region_is_written(shop):
    """The Region is only known at deploy time (generator.ops.dashboards fills it in)."""
    (_, body), = dashboard.build(shop)
    assert all("region" not in w["properties"] for w in body["widgets"])


def test_each_environment_gets_its_own_dashboard(two_environments):
    files = {k: json.loads(v) for k, v in dashboard.render(two_environments).items()}
    assert sorted(files) == ["dashboards/shop-production.json", "dashboards/shop-staging.json"]
    for env in ("staging", "production"):
        body = files[f"dashboards/shop-{env}.json"]
        metrics = [w for w in body["widgets"] if w["type"] == "metric"]
        assert {w["properties"]["region"] for w in metrics} == {"eu-west-1"}
        # Every line that names a cluster names this environment's (the all-callers lines
        # name only the discovery name, generator.stacks.alarms).
        clusters = {dimensions(line)["ClusterName"] for w in metrics
                    for line in w["properties"]["metrics"] if "ClusterName" in dimensions(line)}
        assert clusters == {f"shop-{env}-cluster"}
        endpoint = two_environments.in_environment(env).endpoint(
            two_environments.in_environment(env).service("web"))
        assert any(endpoint in w["properties"].get("markdown", "") for w in body["widgets"])
        assert any(f"`python -m generator logs web --env {env}`" in w["properties"].get(
            "markdown", "") for w in body["widgets"])



def test_an_environment_named_like_a_split_keeps_its_own_dashboard(two_environments_text):
    """Splits are `<app>_<n>`: `_` is in no app or environment name, so an environment
    `staging-2` (app shop-staging-2) is never staging's second dashboard."""
    text = two_environments_text.replace("  production:\n", "  staging-2:\n")
    files = dashboard.render(topology_module.parse(text, "topology.yaml"))
    assert sorted(files) == ["dashboards/shop-staging-2.json", "dashboards/shop-staging.json"]
    assert dashboard.names(topology_module.parse(text, "topology.yaml").in_environment(
        "staging"), 3) == ["shop-staging", "shop-staging_2", "shop-staging_3"]


def test_every_widget_has_the_documented_shape(shop, two_environments):
    """CloudWatch-Dashboard-Body-Structure.html: a widget has type, x (0-23), y, width
    (1-24) and height (1-1000); a metric widget's `metrics` lines are [Namespace,
    MetricName, DimensionName, DimensionValue, ..., {rendering properties}], its `period`
    a multiple of 60, its `view` timeSeries; a text widget has `markdown`."""
    bodies = [body for topology in (shop, *two_environments.deployments)
              for _, body in dashboard.build(topology)]
    for body in bodies:
        assert set(body) == {"start", "periodOverride", "widgets"}
        for widget in body["widgets"]:
            assert set(widget) == {"type", "x", "y", "width", "height", "properties"}
            assert 0 <= widget["x"] <= 23 and widget["y"] >= 0
            assert 1 <= widget["width"] <= 24 and 1 <= widget["height"] <= 1000
            properties = widget["properties"]
            if widget["type"] == "text":
                assert set(properties) == {"markdown"} and properties["markdown"]
                continue
            assert widget["type"] == "metric"
            assert properties["view"] == "timeSeries" and properties["period"] % 60 == 0
            assert properties["stat"] in ("Sum", "Average", "p99") and properties["title"]
            for line in properties["metrics"]:
                *names_and_values, options = line
                assert isinstance(options, dict) and set(options) == {"label"}
                assert all(isinstance(item, str) and item for item in names_and_values)
                assert len(names_and_values) % 2 == 0  # namespace, metric, then pairs
