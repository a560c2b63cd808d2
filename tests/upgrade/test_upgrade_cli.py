"""`python -m generator check-upgrade --from DIR_OR_REF`."""
from __future__ import annotations

import shutil
import subprocess
import sys

from generator import cli

from upgrade_fixtures import LEGACY


def test_from_a_directory_prints_the_predicted_failure_and_exits_1(capsys):
    code = cli.main(["check-upgrade", "--from", str(LEGACY / "trio"),
                     "--out", str(LEGACY / "seed")])
    out = capsys.readouterr().out.splitlines()
    assert code == cli.EXIT_FINDINGS
    assert "update  demo-cluster (cluster.yaml)  by CodePipeline action Cluster/Cluster" in out
    assert "export removed: demo-cluster-TaskSecurityGroup-audit (demo-cluster)" in out
    assert any(line.startswith("predicted failure: demo-cluster: ") for line in out)
    assert out[-1] == "check-upgrade: 1 predicted failure(s)"


def test_from_a_directory_that_deploys_exits_0(capsys):
    code = cli.main(["check-upgrade", "--from", str(LEGACY / "seed"),
                     "--out", str(LEGACY / "trio")])
    out = capsys.readouterr().out.splitlines()
    assert code == cli.EXIT_OK
    assert out[-1] == "check-upgrade: OK (7 stack operations)"


def git(repository, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=repository, check=True, capture_output=True)


def test_from_a_git_ref(tmp_path, monkeypatch, capsys):
    shutil.copytree(LEGACY / "trio", tmp_path / "templates")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "templates")
    git(tmp_path, "commit", "-qm", "trio deployed")
    shutil.rmtree(tmp_path / "templates")
    shutil.copytree(LEGACY / "seed", tmp_path / "templates")  # the change: audit removed
    monkeypatch.chdir(tmp_path)
    assert cli.main(["check-upgrade", "--from", "HEAD"]) == cli.EXIT_FINDINGS
    assert "demo-cluster-TaskSecurityGroup-audit" in capsys.readouterr().out
    git(tmp_path, "add", "-A", "templates")
    git(tmp_path, "commit", "-qm", "seed")
    assert cli.main(["check-upgrade", "--from", "HEAD"]) == cli.EXIT_OK
    assert cli.main(["check-upgrade", "--from", "HEAD~1", "--out", "templates"]) == \
        cli.EXIT_FINDINGS


def test_a_bad_ref_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    git(tmp_path, "init", "-q")
    monkeypatch.chdir(tmp_path)
    code = cli.main(["check-upgrade", "--from", "no-such-ref", "--out", str(LEGACY / "seed")])
    captured = capsys.readouterr()
    assert code == cli.EXIT_BAD_INPUT
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "error: check-upgrade: no-such-ref: neither a directory nor a commit of this git "
        "repository"]


def test_a_ref_without_templates_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    (tmp_path / "README").write_text("no templates here\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "README")
    git(tmp_path, "commit", "-qm", "empty")
    monkeypatch.chdir(tmp_path)
    code = cli.main(["check-upgrade", "--from", "HEAD", "--out", str(LEGACY / "seed")])
    assert code == cli.EXIT_BAD_INPUT
    assert capsys.readouterr().err.splitlines() == [
        "error: check-upgrade: HEAD: has no templates/ directory"]


def test_a_directory_that_is_not_templates_is_one_line_and_exit_2(tmp_path, capsys):
    code = cli.main(["check-upgrade", "--from", str(tmp_path), "--out", str(LEGACY / "seed")])
    err = capsys.readouterr().err.splitlines()
    assert code == cli.EXIT_BAD_INPUT
    assert len(err) == 1 and err[0].endswith("cluster.yaml: not found (a templates directory "
                                             "has cluster.yaml, service.yaml, pipeline.yaml)")


def test_the_command_runs_as_a_module(tmp_path):
    # No traceback on bad input through the real entry point either.
    result = subprocess.run([sys.executable, "-m", "generator", "check-upgrade", "--from",
                             str(tmp_path / "missing"), "--out", str(LEGACY / "seed")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
