"""`deploy`'s last step: put the deployment's CloudWatch dashboards (generator.dashboard).

The bodies are the committed files templates/dashboards/<name>.json; which names belong
to this deployment comes from the topology, by the same code that wrote them. PutDashboard
replaces a dashboard whole, so a console edit is undone by the next deploy (the header
widget says so). A metric widget needs its Region; a file of a topology without
environments has none (its Region is only known at deploy time), so the client's Region is
filled in here.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html
"""
from __future__ import annotations

import json
from pathlib import Path

from generator import dashboard
from generator.ops.report import Reporter
from generator.ops.stackflow import StackOutcome
from generator.topology import Topology


def put(cloudwatch, topology: Topology, templates_dir: Path, reporter: Reporter,
        dry_run: bool = False) -> list[StackOutcome]:
    """Put every dashboard of the deployment; the failures (none when all went in)."""
    failures = []
    for name, _ in dashboard.build(topology):
        relative = dashboard.path(name)
        path = Path(templates_dir) / relative
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            failures.append(_failed(reporter, name, f"{path}: not found; run `python -m "
                                                    "generator generate` and commit it"))
            continue
        except (OSError, ValueError) as err:
            failures.append(_failed(reporter, name, f"{path}: cannot read: {err}"))
            continue
        if dry_run:
            reporter.line(name, f"dry run: dashboard would be put from {relative}")
            continue
        region = cloudwatch.meta.region_name
        for widget in body.get("widgets", []):
            if widget.get("type") == "metric":
                widget.setdefault("properties", {}).setdefault("region", region)
        try:
            answer = cloudwatch.put_dashboard(
                DashboardName=name, DashboardBody=json.dumps(body, sort_keys=True))
        except Exception as err:  # botocore ClientError: InvalidParameterInput, AccessDenied
            failures.append(_failed(reporter, name, f"PutDashboard: {_message(err)}"))
            continue
        warnings = answer.get("DashboardValidationMessages") or []
        note = f" ({len(warnings)} warning(s): {warnings[0].get('Message')})" if warnings else ""
        reporter.line(name, f"dashboard put from {relative}{note}")
    return failures


def _failed(reporter: Reporter, name: str, failure: str) -> StackOutcome:
    reporter.line(name, f"dashboard not put: {failure}")
    return StackOutcome(name, "failed", failure=f"dashboard {failure}")


def _message(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    error = response.get("Error", {})
    text = error.get("Message") or str(err)
    return " ".join(f"{error.get('Code', '')}: {text}".strip(": ").split())
