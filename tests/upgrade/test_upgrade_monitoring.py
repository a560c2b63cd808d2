"""check-upgrade lists the alarms and dashboards an upgrade creates, changes and deletes
(issue 17, item 6): in the text report and in the approval report.

The templates are the generator's for SEED (which hold the generated alarms, the same on
both sides) with one more AWS::CloudWatch::Alarm the test adds to service.yaml, and
hand-written dashboards/<name>.json files, which the dashboard helper generates and the
deployer puts with PutDashboard
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from generator import upgrade, upgradefacts, upgradereport

from test_upgrade_report import text_of
from upgrade_fixtures import SEED, render_topology


def alarm_yaml(threshold: int) -> str:
    """One more alarm on each service (AWS::CloudWatch::Alarm,
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-cloudwatch-alarm.html)."""
    return f"""\
  ExtraAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: !Sub '${{AppName}}-${{ServiceName}}-extra'
      Namespace: AWS/ECS
      MetricName: HTTPCode_Target_5XX_Count
      Statistic: Sum
      Period: 60
      EvaluationPeriods: 3
      Threshold: {threshold}
      ComparisonOperator: GreaterThanThreshold
"""


def with_alarm(source: Path, destination: Path, threshold: int | None) -> Path:
    shutil.copytree(source, destination)
    # Without the generated dashboards: each test writes the ones it compares.
    shutil.rmtree(destination / "dashboards", ignore_errors=True)
    if threshold is not None:
        service = destination / "service.yaml"
        text = service.read_text(encoding="utf-8")
        assert text.count("\nResources:\n") == 1
        service.write_text(text.replace("\nResources:\n", "\nResources:\n" + alarm_yaml(threshold)),
                           encoding="utf-8")
    return destination


def dashboards(directory: Path, files: dict[str, int]) -> None:
    """dashboards/<name>.json with that many widgets each, instead of the generated ones."""
    shutil.rmtree(directory / "dashboards", ignore_errors=True)
    (directory / "dashboards").mkdir()
    for name, widgets in files.items():
        body = {"widgets": [{"type": "metric", "x": 0, "y": 6 * i, "width": 24, "height": 6,
                             "properties": {"title": f"row {i}"}} for i in range(widgets)]}
        (directory / "dashboards" / f"{name}.json").write_text(json.dumps(body, indent=2))


@pytest.fixture(scope="module")
def seed(tmp_path_factory) -> Path:
    return render_topology(SEED, tmp_path_factory.mktemp("seed") / "templates")


def plan(old: Path, new: Path):
    report, old_files, new_files = upgrade.plan_from(str(old), new)
    return report, upgradefacts.approval(report, old_files, new_files)


def lines(report, kind: str) -> list[str]:
    return [line for line in upgrade.format_report(report).splitlines()
            if line.startswith(kind + " ")]


def test_alarms_created_changed_and_deleted_by_stack(seed, tmp_path):
    without = with_alarm(seed, tmp_path / "without", None)
    five = with_alarm(seed, tmp_path / "five", 5)
    ten = with_alarm(seed, tmp_path / "ten", 10)

    report, _ = plan(without, five)
    assert sorted(lines(report, "alarm")) == [
        "alarm created: demo-client-extra (demo-client): HTTPCode_Target_5XX_Count "
        "GreaterThanThreshold 5, 3 period(s)",
        "alarm created: demo-server-extra (demo-server): HTTPCode_Target_5XX_Count "
        "GreaterThanThreshold 5, 3 period(s)"]
    assert upgrade.format_report(report).splitlines()[-1].startswith("check-upgrade: OK")

    report, _ = plan(five, ten)
    assert sorted(lines(report, "alarm")) == [
        "alarm updated: demo-client-extra (demo-client): Threshold 5 -> 10",
        "alarm updated: demo-server-extra (demo-server): Threshold 5 -> 10"]

    report, _ = plan(ten, without)
    assert sorted(lines(report, "alarm")) == [
        "alarm deleted: demo-client-extra (demo-client): no longer in the template",
        "alarm deleted: demo-server-extra (demo-server): no longer in the template"]

    report, _ = plan(five, five)
    assert lines(report, "alarm") == []


def test_an_alarm_whose_name_changes_is_replaced(seed, tmp_path):
    """AlarmName is create-only: "Update requires: Replacement"
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-cloudwatch-alarm.html)."""
    five = with_alarm(seed, tmp_path / "five", 5)
    renamed = with_alarm(seed, tmp_path / "renamed", 5)
    service = renamed / "service.yaml"
    service.write_text(service.read_text().replace("-extra'", "-errors'"))

    report, _ = plan(five, renamed)

    (line, *_) = sorted(lines(report, "alarm"))
    assert line.startswith("alarm replaced: demo-client-errors (demo-client): because "
                           "AlarmName changes; AlarmName demo-client-extra -> "
                           "demo-client-errors"), line


def test_dashboards_by_file_name(seed, tmp_path):
    old = with_alarm(seed, tmp_path / "old", None)
    new = with_alarm(seed, tmp_path / "new", None)
    dashboards(old, {"demo": 2, "demo-retired": 1, "demo-same": 3})
    dashboards(new, {"demo": 4, "demo-added": 5, "demo-same": 3})
    # The same body, written differently, is no change.
    same = new / "dashboards" / "demo-same.json"
    same.write_text(json.dumps(json.loads(same.read_text())))

    report, _ = plan(old, new)

    assert lines(report, "dashboard") == [
        "dashboard updated: demo (dashboards/demo.json): widgets 2 -> 4",
        "dashboard created: demo-added (dashboards/demo-added.json): 5 widget(s)",
        "dashboard deleted: demo-retired (dashboards/demo-retired.json): its file is no "
        "longer generated"]


def test_no_dashboards_directory_is_no_dashboards(seed, tmp_path):
    old = with_alarm(seed, tmp_path / "old", None)
    new = with_alarm(seed, tmp_path / "new", None)
    dashboards(new, {"demo": 2})

    report, _ = plan(old, new)
    assert lines(report, "dashboard") == [
        "dashboard created: demo (dashboards/demo.json): 2 widget(s)"]
    report, _ = plan(new, old)
    assert [line.split(":")[0] for line in lines(report, "dashboard")] == ["dashboard deleted"]
    report, _ = plan(old, old)
    assert lines(report, "dashboard") == []


def test_a_git_ref_brings_its_dashboards(seed, tmp_path):
    """check-upgrade --from REF reads REF's templates/ from git, dashboards/ included."""
    import subprocess

    repo = tmp_path / "repo"
    shutil.copytree(seed, repo / "templates")
    dashboards(repo / "templates", {"demo": 1})

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                       check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "old")
    (repo / "templates" / "dashboards" / "demo.json").unlink()
    dashboards_dir = repo / "templates" / "dashboards"
    (dashboards_dir / "demo-new.json").write_text(json.dumps({"widgets": []}))

    old = upgrade.templates_at("HEAD", tmp_path / "old", repository=repo)
    assert upgrade.read_templates_dir(old).dashboards.keys() == {"demo"}
    report, _, _ = upgrade.plan_from(str(old), repo / "templates")
    assert [line.split(" (")[0] for line in lines(report, "dashboard")] == [
        "dashboard deleted: demo", "dashboard created: demo-new"]


def test_the_approval_report_shows_them(seed, tmp_path):
    old = with_alarm(seed, tmp_path / "old", None)
    new = with_alarm(seed, tmp_path / "new", 5)
    dashboards(new, {"demo": 3})

    _, approval = plan(old, new)

    assert len(approval.monitoring) == 3
    for document in (upgradereport.format_markdown(approval),
                     upgradereport.format_html(approval)):
        text = text_of(document)
        assert "Alarms and dashboards" in text
        assert "alarm demo-server demo-server-extra created HTTPCode_Target_5XX_Count" \
            in text, text
        assert "dashboard dashboards/demo.json demo created 3 widget(s)" in text


def test_nothing_to_list_says_none(seed, tmp_path):
    _, approval = plan(seed, seed)
    markdown = upgradereport.format_markdown(approval)
    assert "## Alarms and dashboards" in markdown
    section = markdown.split("## Alarms and dashboards", 1)[1].split("##", 1)[0]
    assert "None." in section
