"""`deploy`'s last step: put the deployment's CloudWatch dashboards (generator.dashboard).

The bodies are the committed files templates/dashboards/<name>.json; which names belong
to this deployment comes from the topology, by the same code that wrote them. PutDashboard
replaces a dashboard whole, so a console edit is undone by the next deploy (the header
widget says so). A metric widget needs its Region; a file of a topology without
environments has none (its Region is only known at deploy time), so the client's Region is
filled in here.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html

A deployment that now needs fewer dashboards than before (a split undone) leaves
`<app>_<n>` dashboards nothing writes any more: they are found by name, `<app>_<k+1>` on
until GetDashboard answers ResourceNotFound (API_GetDashboard.html), and deleted, so no
page of the old split shows services that moved. No listing: every call names a dashboard,
so IAM can scope it to the app's names (generator.dashboard.iam_resources).
"""
from __future__ import annotations

import json
from pathlib import Path

from generator import dashboard
from generator.ops.aws import error_code, error_message
from generator.ops.report import Reporter
from generator.ops.stackflow import StackOutcome
from generator.topology import Topology


def put(cloudwatch, topology: Topology, templates_dir: Path, reporter: Reporter,
        dry_run: bool = False) -> list[StackOutcome]:
    """Put every dashboard of the deployment, then delete the ones of an earlier, larger
    split; the failures (none when all went well)."""
    failures = []
    built = dashboard.build(topology)
    for name, _ in built:
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
    if failures:
        return failures
    return _retire(cloudwatch, topology, len(built), reporter, dry_run)


def _retire(cloudwatch, topology: Topology, kept: int, reporter: Reporter,
            dry_run: bool) -> list[StackOutcome]:
    """Delete `<app>_<kept+1>`, `<app>_<kept+2>`, ... while they exist."""
    stale = []
    for index in range(kept + 1, dashboard.MAX_DASHBOARDS + 1):
        name = dashboard.names(topology, index)[-1]
        try:
            cloudwatch.get_dashboard(DashboardName=name)
        except Exception as err:  # botocore ClientError
            if error_code(err) == "ResourceNotFound":
                break
            return [_failed(reporter, name, f"GetDashboard: {_message(err)}")]
        stale.append(name)
    if not stale:
        return []
    verb = "would be deleted" if dry_run else "deleted"
    if not dry_run:
        try:
            cloudwatch.delete_dashboards(DashboardNames=stale)
        except Exception as err:  # botocore ClientError
            return [_failed(reporter, stale[0], f"DeleteDashboards: {_message(err)}")]
    for name in stale:
        reporter.line(name, f"dashboard {verb}: {topology.app} needs {kept} dashboard(s) now")
    return []


def _failed(reporter: Reporter, name: str, failure: str) -> StackOutcome:
    reporter.line(name, f"dashboard not put: {failure}")
    return StackOutcome(name, "failed", failure=f"dashboard {failure}")


def _message(err: Exception) -> str:
    code = error_code(err)
    text = " ".join(error_message(err).split())
    return f"{code}: {text}" if code else text
