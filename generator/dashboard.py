"""The CloudWatch dashboard(s) of each deployment: topology -> [(name, body)], pure.

Not a resource of the shared templates: the body depends on the services, and one template
serves every deployment through parameters of at most 4,096 bytes
(generator.awsfacts.quotas.PARAMETER_VALUE_BYTES). `generate` writes each body as
`templates/dashboards/<name>.json`, and `deploy` puts them after a successful run
(generator.ops.dashboards).

Layout: a header, then one row per service in deploy order (callees first, as
`generator.plan` orders them): a text widget with the service and its endpoint, then what
its callers get from it, from Service Connect's metrics in AWS/ECS, and its running tasks:

- requests: every caller together (TargetDiscoveryName alone: what the service's own
  alarms read, generator.stacks.alarms), and one line per caller from the caller's side
  (ClusterName, ServiceName=<caller>, TargetDiscoveryName=<this service's discovery name>);
- 5xx: HTTPCode_Target_5XX_Count, the same lines;
- latency: TargetResponseTime p99, the same lines;
- tasks: RunningTaskCount of Container Insights (ECS/ContainerInsights, ClusterName and
  ServiceName; the cluster stack turns Container Insights on).

Metric names and dimensions: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/available-metrics.html
(Service Connect metrics, namespace AWS/ECS: the target's answers, 5xx and response time,
are published on the callers' side only, by TargetDiscoveryName alone or with the caller's
ServiceName and ClusterName) and
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Container-Insights-metrics-ECS.html
(RunningTaskCount). Body syntax, where a metric widget names its Region (an environment's;
without environments the deployer adds its own, generator.ops.dashboards):
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html

Limits (generator.awsfacts.quotas): widgets per dashboard, metrics per graph widget,
metrics per dashboard, and the body's bytes. Rows are packed in deploy order into as many
dashboards as the limits need, named `<app>`, `<app>_2`, `<app>_3`, ... (`_`, which no app or
environment name can hold, so that `dashboard/<app>_*` in a policy reaches this
deployment's splits and no other app's: IAM's wildcards cannot say "digits"); a service with
more callers than one graph may hold gets each graph split into several widgets, each with
at most that many lines (the first one also carries the every-caller line), so no caller's
line is ever dropped. A single service row past a dashboard's limits is a QuotaError.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from generator import plan
from generator.awsfacts import quotas
from generator.quotacheck import QuotaError
from generator.topology import Service, Topology

DIRECTORY = "dashboards"
SERVICE_CONNECT_NAMESPACE = "AWS/ECS"
CONTAINER_INSIGHTS_NAMESPACE = "ECS/ContainerInsights"
# A CloudWatch dashboard is 24 grid units wide (Dashboard Body Structure, widget `x`).
GRID_WIDTH = 24
TEXT_WIDTH = 4
GRAPH_WIDTH = 5
ROW_HEIGHT = 6
HEADER_HEIGHT = 3
PERIOD_SECONDS = 60
# (title, metric, statistic) of the incoming-traffic graphs, in row order.
TRAFFIC_GRAPHS = (
    ("requests", "RequestCount", "Sum"),
    ("5xx", "HTTPCode_Target_5XX_Count", "Sum"),
    ("p99 latency (ms)", "TargetResponseTime", "p99"),
)
ALL_CALLERS = "all callers"
SPLIT = "_"
# `<app>` to `<app>_99`: a bound on the leftover splits `deploy` looks for, far more than
# 300 services need (4).
MAX_DASHBOARDS = 99


class DashboardQuotaError(QuotaError):
    """A service row that fits no dashboard; str() is the one-line message (exit 2)."""


@dataclass(frozen=True)
class Limits:
    widgets_per_dashboard: int
    metrics_per_widget: int
    metrics_per_dashboard: int
    body_bytes: int


def limits() -> Limits:
    """CloudWatch's, read when called (generator.awsfacts.quotas)."""
    return Limits(quotas.WIDGETS_PER_DASHBOARD.limit, quotas.METRICS_PER_DASHBOARD_WIDGET.limit,
                  quotas.METRICS_PER_DASHBOARD.limit, quotas.DASHBOARD_BODY_BYTES.limit)


def body_bytes(body: dict) -> bytes:
    """A body as written to templates/dashboards/ and sent as DashboardBody: JSON with one
    widget a line (a change to one service's row is a diff of its lines), keys sorted."""
    head = {key: value for key, value in sorted(body.items()) if key != "widgets"}
    lines = ["{"] + [f" {json.dumps(key)}: {json.dumps(value)}," for key, value in head.items()]
    widgets = [f"  {_compact(widget)}" for widget in body["widgets"]]
    lines += [' "widgets": [', ",\n".join(widgets), " ]", "}"]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _compact(widget: dict) -> str:
    return json.dumps(widget, sort_keys=True, separators=(",", ":"))


def path(name: str) -> str:
    return f"{DIRECTORY}/{name}.json"


def names(topology: Topology, count: int) -> list[str]:
    """`<app>`, then `<app>_2`, `<app>_3`, ... (DashboardName: letters, digits, - and _;
    an app is a DNS label, without `_`)."""
    return [topology.app] + [f"{topology.app}{SPLIT}{index}" for index in range(2, count + 1)]


def iam_resources(topology: Topology) -> list[str]:
    """What a policy grants the deployer's dashboard calls on: every deployment's dashboards,
    `<app>` and its splits `<app>_<n>`. No app or environment name holds `_` (DNS labels),
    so `<app>_*` is no other app's dashboard, even one whose name extends this app's
    (`<app>-eu`). A dashboard's ARN has no Region:
    arn:${Partition}:cloudwatch::${Account}:dashboard/${DashboardName} (Service
    Authorization Reference, Amazon CloudWatch, resource type dashboard)."""
    apps = list(dict.fromkeys(deployment.app for deployment in topology.deployments))
    return [f"dashboard/{app}{suffix}" for app in apps for suffix in ("", f"{SPLIT}*")]


def metric_count(widget: dict) -> int:
    return len(widget.get("properties", {}).get("metrics", []))


# --- widgets -----------------------------------------------------------------------------


def _text(markdown: str, width: int, height: int) -> dict:
    return {"type": "text", "width": width, "height": height,
            "properties": {"markdown": markdown}}


def _graph(title: str, metrics: list[list], stat: str, region: str | None) -> dict:
    properties = {"title": title, "view": "timeSeries", "stacked": False,
                  "metrics": metrics, "stat": stat, "period": PERIOD_SECONDS}
    if region:
        properties["region"] = region
    return {"type": "metric", "width": GRAPH_WIDTH, "height": ROW_HEIGHT,
            "properties": properties}


def _own_side(topology: Topology, service: Service, metric: str) -> list:
    return [SERVICE_CONNECT_NAMESPACE, metric, "TargetDiscoveryName", service.discovery_name,
            {"label": ALL_CALLERS}]


def _caller_side(topology: Topology, service: Service, caller: Service, metric: str) -> list:
    return [SERVICE_CONNECT_NAMESPACE, metric, "ClusterName", topology.cluster_stack_name,
            "ServiceName", caller.name, "TargetDiscoveryName", service.discovery_name,
            {"label": f"from {caller.name}"}]


def _service_text(topology: Topology, service: Service, callers: list[Service]) -> dict:
    env = f" --env {topology.environment.name}" if topology.environment else ""
    lines = [f"### {service.name}", f"`{topology.endpoint(service)}`", "",
             f"- stack `{topology.stack_name(service)}`",
             f"- {len(callers)} caller(s), {len(service.calls)} callee(s)"]
    if service.public:
        lines.append("- public: behind its own load balancer")
    lines.append(f"- logs: `python -m generator logs {service.name}{env}`")
    return _text("\n".join(lines), TEXT_WIDTH, ROW_HEIGHT)


def service_row(topology: Topology, service: Service, callers: list[Service], bounds: Limits,
                region: str | None) -> list[dict]:
    """The row's widgets, unplaced: text, requests, 5xx, latency (each split when the
    callers, sorted by name, are more than a graph holds), tasks."""
    row = [_service_text(topology, service, callers)]
    for title, metric, stat in TRAFFIC_GRAPHS:
        lines = [_own_side(topology, service, metric)] + [
            _caller_side(topology, service, caller, metric) for caller in callers]
        per_widget = bounds.metrics_per_widget
        parts = [lines[start:start + per_widget] for start in range(0, len(lines), per_widget)]
        for index, part in enumerate(parts):
            suffix = f" ({index + 1}/{len(parts)})" if len(parts) > 1 else ""
            row.append(_graph(f"{service.name}: {title}{suffix}", part, stat, region))
    row.append(_graph(f"{service.name}: running tasks", [[
        CONTAINER_INSIGHTS_NAMESPACE, "RunningTaskCount", "ClusterName",
        topology.cluster_stack_name, "ServiceName", service.name,
        {"label": "running"}]], "Average", region))
    return row


def _header(topology: Topology, index: int, all_names: list[str]) -> dict:
    others = ", ".join(f"`{name}`" for name in all_names)
    part = f" ({index + 1} of {len(all_names)}: {others})" if len(all_names) > 1 else ""
    # PutDashboard advises a text widget saying the dashboard is made by a script and where
    # its source is (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html).
    markdown = (
        f"## {topology.app}{part}\n"
        "Generated from topology.yaml by `python -m generator generate` "
        f"(templates/{path(all_names[index])}) and put by `deploy`: edits made here are "
        "lost at the next deploy. One row per service, callees first: requests, 5xx and "
        "p99 latency as its callers get them (all callers, then one line per caller), and "
        "its running tasks.")
    return _text(markdown, GRID_WIDTH, HEADER_HEIGHT)


def _place(widgets: list[dict], y: int) -> int:
    """Set x and y of a row's widgets, wrapping at the grid's width; returns the next y."""
    x = 0
    for widget in widgets:
        if x + widget["width"] > GRID_WIDTH:
            x, y = 0, y + widget["height"]
        widget["x"], widget["y"] = x, y
        x += widget["width"]
    return y + max(widget["height"] for widget in widgets)


# --- packing -----------------------------------------------------------------------------


def build(topology: Topology, bounds: Limits | None = None) -> list[tuple[str, dict]]:
    """One deployment's dashboards, (DashboardName, body) each, in order."""
    bounds = bounds or limits()
    region = topology.environment.region if topology.environment else None
    order = plan.build(topology).order
    services = {service.name: service for service in topology.services}
    callers: dict[str, list[Service]] = {name: [] for name in services}
    for service in sorted(topology.services, key=lambda s: s.name):
        for callee in service.calls:
            callers[callee].append(service)
    rows = [(name, service_row(topology, services[name], callers[name], bounds, region))
            for name in order]
    pages: list[list[list[dict]]] = [[]]
    widgets, metrics, size = 1, 0, _empty_size(topology)
    for name, row in rows:
        row_widgets = len(row)
        row_metrics = sum(metric_count(w) for w in row)
        row_size = sum(len(_compact(w).encode()) + 4 for w in row)
        _check_row(topology, name, row_widgets, row_metrics, row_size, bounds)
        if pages[-1] and (widgets + row_widgets > bounds.widgets_per_dashboard
                          or metrics + row_metrics > bounds.metrics_per_dashboard
                          or size + row_size > bounds.body_bytes):
            pages.append([])
            widgets, metrics, size = 1, 0, _empty_size(topology)
        pages[-1].append(row)
        widgets, metrics, size = widgets + row_widgets, metrics + row_metrics, size + row_size
    if len(pages) > MAX_DASHBOARDS:
        raise DashboardQuotaError(
            f"{topology.source}: {topology.app}: {len(topology.services)} services need "
            f"{len(pages)} dashboards, over the {MAX_DASHBOARDS} `deploy` manages "
            f"({topology.app} to {topology.app}{SPLIT}{MAX_DASHBOARDS}); split the topology")
    all_names = names(topology, len(pages))
    result = []
    for index, page in enumerate(pages):
        header = _header(topology, index, all_names)
        y = _place([header], 0)
        placed = [header]
        for row in page:
            y = _place(row, y)
            placed.extend(row)
        result.append((all_names[index], {"start": "-PT3H", "periodOverride": "inherit",
                                          "widgets": placed}))
    return result


def _empty_size(topology: Topology) -> int:
    # The header and the body's own keys, with room for the list of every dashboard's name.
    return 1024 + 8 * len(topology.app)


def _check_row(topology: Topology, service: str, widgets: int, metrics: int, size: int,
               bounds: Limits) -> None:
    where = f"environments.{topology.environment.name}." if topology.environment else ""
    for count, limit, quota in (
            (widgets + 1, bounds.widgets_per_dashboard, quotas.WIDGETS_PER_DASHBOARD),
            (metrics, bounds.metrics_per_dashboard, quotas.METRICS_PER_DASHBOARD),
            (size + _empty_size(topology), bounds.body_bytes, quotas.DASHBOARD_BODY_BYTES)):
        if count > limit:
            raise DashboardQuotaError(
                f"{topology.source}: {where}services.{service}: its dashboard row and the "
                f"header need {count:,} {quota.name}, over {limit:,} ({quota.source}); give "
                "the service fewer callers")


def render(topology: Topology, bounds: Limits | None = None) -> dict[str, bytes]:
    """templates/-relative path -> bytes, for every deployment's dashboards."""
    files = {}
    for deployment in topology.deployments:
        for name, body in build(deployment, bounds):
            files[path(name)] = body_bytes(body)
    return files


def changes(old_dir, new_dir, app: str | None = None) -> list[tuple[str, str]]:
    """What deploying new_dir's dashboards over old_dir's does, for check-upgrade: (name,
    "created" | "changed" | "deleted"), by name; `app`: only that deployment's (`<app>`,
    `<app>_<n>`). Two templates directories, as `generate` writes them."""
    from pathlib import Path

    def read(directory) -> dict[str, bytes]:
        found = {}
        for file in sorted((Path(directory) / DIRECTORY).glob("*.json")):
            rest = file.stem.removeprefix(f"{app}{SPLIT}") if app else ""
            if app is None or file.stem == app or (rest != file.stem and rest.isdigit()):
                found[file.stem] = file.read_bytes()
        return found

    old, new = read(old_dir), read(new_dir)
    result = [(name, "created") for name in new if name not in old]
    result += [(name, "changed") for name in new if name in old and old[name] != new[name]]
    result += [(name, "deleted") for name in old if name not in new]
    return sorted(result)


def check(files: dict[str, bytes], bounds: Limits | None = None) -> None:
    """Every rendered dashboard inside every limit, counted on the bytes to be written (a
    check independent of the packing above); DashboardQuotaError names the file."""
    bounds = bounds or limits()
    for relative, content in sorted(files.items()):
        if not relative.startswith(f"{DIRECTORY}/"):
            continue
        body = json.loads(content)
        widgets = body["widgets"]
        counts = [metric_count(w) for w in widgets]
        for count, limit, quota in (
                (len(content), bounds.body_bytes, quotas.DASHBOARD_BODY_BYTES),
                (len(widgets), bounds.widgets_per_dashboard, quotas.WIDGETS_PER_DASHBOARD),
                (sum(counts), bounds.metrics_per_dashboard, quotas.METRICS_PER_DASHBOARD),
                (max(counts, default=0), bounds.metrics_per_widget,
                 quotas.METRICS_PER_DASHBOARD_WIDGET)):
            if count > limit:
                raise DashboardQuotaError(f"{relative}: {count:,} {quota.name}, over "
                                          f"{limit:,} ({quota.source}); split the topology")
