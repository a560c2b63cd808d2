"""What an upgrade does to the app's monitoring (issue 17, item 6): the
AWS::CloudWatch::Alarm resources of its stacks created, changed and deleted, and its
dashboards, the generated files templates/dashboards/<name>.json the deployer puts with
PutDashboard, created, changed and deleted by file name.

A changed alarm is what an on-call engineer notices first (a threshold, what it watches, a
deployment's rollback alarm gone), so each one names the properties that change. Pure: no
AWS, no clock; `check-upgrade`'s text report and the approval report both show these.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from generator.upgrade import UpgradeReport

ALARM_TYPE = "AWS::CloudWatch::Alarm"
DASHBOARDS_DIR = "dashboards"
# A changed property's old and new values are shown when both are this short (a
# threshold, a period, a statistic); a metric query's is only named.
_SHOWN_VALUE_CHARS = 40


@dataclass(frozen=True)
class MonitoringChange:
    kind: str  # "alarm" or "dashboard"
    where: str  # the alarm's stack; the dashboard's file, dashboards/<name>.json
    name: str  # the alarm's AlarmName (its logical id when it has none); the dashboard's
    change: str  # created, updated, replaced, deleted
    summary: str

    def line(self) -> str:
        return f"{self.kind} {self.change}: {self.name} ({self.where})" + (
            f": {self.summary}" if self.summary else "")


def read_dashboards(directory: Path) -> dict[str, str]:
    """dashboards/**/*.json under a templates directory: name (its path below dashboards/,
    without .json) -> text. No dashboards/ directory: none."""
    root = directory / DASHBOARDS_DIR
    if not root.is_dir():
        return {}
    return {file.relative_to(root).with_suffix("").as_posix(): file.read_text(encoding="utf-8")
            for file in sorted(root.rglob("*.json")) if file.is_file()}


def alarm_changes(report: UpgradeReport) -> tuple[MonitoringChange, ...]:
    """Every alarm of a stack the upgrade touches, created, updated, replaced or deleted,
    in the order its stack is first touched."""
    return tuple(
        MonitoringChange("alarm", stack, _name(resource, logical), change,
                         _watches(resource.properties) if change == "created" else detail)
        for stack, logical, resource, change, detail in report.resource_changes(
            lambda r: r.type == ALARM_TYPE, _property_changes,
            order=lambda logical, resource: _name(resource, logical)))


def dashboard_changes(old: Mapping[str, str], new: Mapping[str, str]
                      ) -> tuple[MonitoringChange, ...]:
    """Dashboards by file name: created, updated (the body differs as JSON, or as text
    when it is not JSON) and deleted."""
    changes = []
    for name in sorted(set(old) | set(new)):
        where = f"{DASHBOARDS_DIR}/{name}.json"
        if name not in old:
            changes.append(MonitoringChange("dashboard", where, name, "created",
                                            _widgets(_body(new[name]))))
        elif name not in new:
            changes.append(MonitoringChange("dashboard", where, name, "deleted",
                                            "its file is no longer generated"))
        else:
            before, after = _body(old[name]), _body(new[name])
            if before != after:
                changes.append(MonitoringChange("dashboard", where, name, "updated",
                                                _dashboard_summary(before, after)))
    return tuple(changes)


def _name(resource, logical: str) -> str:
    name = resource.properties.get("AlarmName")
    return name if isinstance(name, str) and name else logical


def _watches(properties: Mapping[str, Any]) -> str:
    """What a new alarm fires on, in a few words."""
    metric = properties.get("MetricName")
    if not metric and isinstance(properties.get("Metrics"), list):
        names = [str(m.get("MetricStat", {}).get("Metric", {}).get("MetricName"))
                 for m in properties["Metrics"] if isinstance(m, dict) and "MetricStat" in m]
        metric = " over ".join(names) if names else "metric math"
    comparison = properties.get("ComparisonOperator", "")
    threshold = properties.get("Threshold", "")
    periods = properties.get("EvaluationPeriods", "")
    return " ".join(str(part) for part in (metric, comparison, threshold) if part != "") + (
        f", {periods} period(s)" if periods != "" else "")


def _short(value: Any) -> str | None:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= _SHOWN_VALUE_CHARS else None


def _property_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    parts = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) == after.get(name):
            continue
        if name not in before:
            parts.append(f"{name} added")
        elif name not in after:
            parts.append(f"{name} removed")
        else:
            old, new = _short(before[name]), _short(after[name])
            parts.append(f"{name} {old} -> {new}" if old is not None and new is not None
                         else f"{name} changed")
    return parts


def _body(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _widget_count(body: Any) -> int | None:
    widgets = body.get("widgets") if isinstance(body, dict) else None
    return len(widgets) if isinstance(widgets, list) else None


def _widgets(body: Any) -> str:
    count = _widget_count(body)
    return "" if count is None else f"{count} widget(s)"


def _dashboard_summary(before: Any, after: Any) -> str:
    old, new = _widget_count(before), _widget_count(after)
    if old is not None and new is not None and old != new:
        return f"widgets {old} -> {new}"
    return "its widgets change"
