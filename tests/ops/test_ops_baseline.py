"""Issue 14 finding 9 against moto: `check-upgrade --no-baseline` (the Build's branch when
deployed/ holds no templates) passes before the first deploy and stops, in one line, when
the app's stacks exist but the baseline is gone (generator.ops.baseline)."""
from __future__ import annotations

import json

import pytest

from generator import cli

pytestmark = pytest.mark.integration

WHERE = "s3://bucket/deployed/templates/"
# Any stack under the cluster stack's name: what matters is that it exists.
STAND_IN = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})


def _run(project_dir, capsys, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.chdir(project_dir)
    code = cli.main(["check-upgrade", "--no-baseline", WHERE])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_no_stacks_is_a_first_deploy(project, capsys, monkeypatch):
    code, out, err = _run(project.root, capsys, monkeypatch)
    assert code == 0, err
    assert "nothing deployed yet" in out and "shop-cluster" in out


def test_stacks_without_a_baseline_stop_the_build(project, boto, capsys, monkeypatch):
    boto("cloudformation").create_stack(StackName="shop-cluster", TemplateBody=STAND_IN)
    code, out, err = _run(project.root, capsys, monkeypatch)
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "shop-cluster" in lines[0] and WHERE in lines[0]
