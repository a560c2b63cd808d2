"""The buildspecs' shell, run in `sh` with fake `python` and `aws` first on PATH that
record their argv: with ENVIRONMENT(S) set the Build checks every environment against its
own baseline and files its approval report under this run, Deploy and Verify act on the
action's environment and the baseline goes to deployed/<env>/templates/; without them the
commands are today's; a failure stops what follows (CodeBuild runs a phase's commands in
one shell and stops at the first that fails)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import stack as pipeline_stack

# `python` logs its argv, writes the file after --output, and fails when its command
# line contains $FAKE_FAIL; `aws s3 sync` of a source containing $FAKE_BASELINE leaves a
# cluster.yaml in the destination (a baseline was there).
FAKE = """#!{python}
import json, os, sys
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps([name] + args) + "\\n")
line = " ".join(args)
if name == "python" and os.environ.get("FAKE_FAIL") and os.environ["FAKE_FAIL"] in line:
    sys.exit(1)
if name == "python" and "--output" in args:
    open(args[args.index("--output") + 1], "w").write("<html></html>")
if name == "aws" and args[:2] == ["s3", "sync"]:
    baseline = os.environ.get("FAKE_BASELINE")
    if baseline and baseline in args[-2]:
        os.makedirs(args[-1], exist_ok=True)
        open(os.path.join(args[-1], "cluster.yaml"), "w").write("{{}}")
"""


@pytest.fixture
def fakes(tmp_path) -> dict[str, str]:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    for name in ("python", "aws"):
        path = bin_dir / name
        path.write_text(FAKE.format(python=sys.executable), encoding="utf-8")
        path.chmod(0o755)
    (tmp_path / "work" / "reports").mkdir(parents=True)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_LOG": str(tmp_path / "calls.jsonl"), "TEMPLATE_BUCKET": "tb",
            "ARTIFACT_BUCKET": "ab", "IMAGE_REPOSITORY_URI": "r"}


def commands(repo_root: Path, buildspec: str, phase: str) -> list[str]:
    return yaml.safe_load((repo_root / buildspec).read_text())["phases"][phase]["commands"]


def run(script: list[str], env: dict, cwd: Path) -> tuple[int, list[list[str]]]:
    """The commands in one `sh`, stopping at the first that fails (as CodeBuild does)."""
    log = Path(env["FAKE_LOG"])
    log.write_text("")
    text = "\n".join(f"{command}\nstatus=$?; [ $status -eq 0 ] || exit $status"
                     for command in script)
    result = subprocess.run(["sh", "-c", text], cwd=cwd, env={**os.environ, **env},
                            capture_output=True, text=True, timeout=60)
    return result.returncode, [json.loads(line) for line in log.read_text().splitlines()]


def _check_upgrade_block(repo_root: Path) -> list[str]:
    pre_build = commands(repo_root, "buildspec.yml", "pre_build")
    start = next(i for i, c in enumerate(pre_build) if "APPROVAL_REPORTS" in c)
    return pre_build[start:start + 2]


def test_the_build_checks_each_environment_against_its_own_baseline(repo_root, fakes, tmp_path):
    env = {**fakes, "ENVIRONMENTS": "staging production", "PIPELINE_EXECUTION_ID": "e-1",
           "FAKE_BASELINE": "deployed/staging/"}
    status, calls = run(_check_upgrade_block(repo_root), env, tmp_path / "work")
    assert status == 0
    python = [c[1:] for c in calls if c[0] == "python"]
    assert python == [
        ["-m", "generator", "check-upgrade", "--env", "staging", "--from", "deployed-staging"],
        ["-m", "generator", "check-upgrade", "--env", "staging", "--from", "deployed-staging",
         "--format", "html", "--output", "reports/approval-staging.html"],
        ["-m", "generator", "check-upgrade", "--env", "production", "--no-baseline",
         "s3://tb/deployed/production/templates/"],
        ["-m", "generator", "check-upgrade", "--env", "production", "--no-baseline",
         "s3://tb/deployed/production/templates/", "--format", "html", "--output",
         "reports/approval-production.html"],
    ]
    uploads = [c[-1] for c in calls if c[:3] == ["aws", "s3", "cp"]]
    assert uploads == ["s3://ab/approval-reports/e-1/approval-staging.html",
                       "s3://ab/approval-reports/e-1/approval-production.html"]


def test_a_failed_check_stops_the_build(repo_root, fakes, tmp_path):
    env = {**fakes, "ENVIRONMENTS": "staging production", "PIPELINE_EXECUTION_ID": "e-1",
           "FAKE_FAIL": "--env staging"}
    status, calls = run(_check_upgrade_block(repo_root), env, tmp_path / "work")
    assert status != 0
    assert not [c for c in calls if "production" in " ".join(c)]


def test_without_environments_the_build_checks_as_before(repo_root, fakes, tmp_path):
    status, calls = run(_check_upgrade_block(repo_root), {**fakes, "FAKE_BASELINE": "deployed/templates/"},
                        tmp_path / "work")
    assert status == 0
    assert [c[1:] for c in calls if c[0] == "python"] == [
        ["-m", "generator", "check-upgrade", "--from", "deployed-templates"]]
    assert [c[:3] for c in calls if c[0] == "aws"] == [["aws", "s3", "sync"]]


def test_deploy_acts_on_the_actions_environment_then_keeps_its_baseline(repo_root, fakes, tmp_path):
    script = commands(repo_root, pipeline_stack.DEPLOY_BUILDSPEC, "build")
    status, calls = run(script, {**fakes, "ENVIRONMENT": "production"}, tmp_path / "work")
    assert status == 0
    assert calls == [
        ["python", "-m", "generator", "deploy", "--topology", "topology.yaml", "--env",
         "production", "--images", "images.json", "--poll-seconds", "15"],
        ["aws", "s3", "sync", "--delete", "--quiet", "templates/",
         "s3://tb/deployed/production/templates/"],
    ]


def test_a_failed_deploy_keeps_the_old_baseline(repo_root, fakes, tmp_path):
    script = commands(repo_root, pipeline_stack.DEPLOY_BUILDSPEC, "build")
    status, calls = run(script, {**fakes, "ENVIRONMENT": "production", "FAKE_FAIL": "deploy"},
                        tmp_path / "work")
    assert status != 0
    assert [c[0] for c in calls] == ["python"]


def test_without_environment_deploy_runs_todays_command(repo_root, fakes, tmp_path):
    script = commands(repo_root, pipeline_stack.DEPLOY_BUILDSPEC, "build")
    env = {**fakes, "VPC_ID": "vpc-0a1b2c3d", "PRIVATE_SUBNET_IDS": "subnet-0a,subnet-0b",
           "PUBLIC_SUBNET_IDS": "", "DEPLOY_ROLE_ARN": "arn:aws:iam::1:role/d"}
    status, calls = run(script, env, tmp_path / "work")
    assert status == 0
    assert calls == [
        ["python", "-m", "generator", "deploy", "--topology", "topology.yaml", "--images",
         "images.json", "--vpc-id", "vpc-0a1b2c3d", "--subnets", "subnet-0a,subnet-0b",
         "--role-arn", "arn:aws:iam::1:role/d", "--template-bucket", "tb",
         "--poll-seconds", "15"],
        ["aws", "s3", "sync", "--delete", "--quiet", "templates/", "s3://tb/deployed/templates/"],
    ]


@pytest.mark.parametrize("environment, expected", [
    ("staging", ["--env", "staging"]), ("", [])])
def test_verify_checks_the_actions_environment(repo_root, fakes, tmp_path, environment, expected):
    script = commands(repo_root, pipeline_stack.VERIFY_BUILDSPEC, "build")
    status, calls = run(script, {**fakes, "ENVIRONMENT": environment}, tmp_path / "work")
    assert status == 0
    assert calls == [["python", "-m", "generator", "verify", "--topology", "topology.yaml",
                      *expected, "--wait", "10", "--poll-seconds", "15"]]
