"""Helpers of the scale tests (used by conftest.py and the test modules): the real CLI in
a subprocess, byte snapshots of an output directory, and a YAML reader for templates
written here rather than imported from the generator, so that the counts the tests make
share no code with what they check.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `benchmarks` is not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import topologies  # noqa: E402

CLI_TIMEOUT_SECONDS = 300


def run_cli(*args: str | os.PathLike, timeout: float = CLI_TIMEOUT_SECONDS
            ) -> subprocess.CompletedProcess:
    """`python -m generator ARGS` as a user runs it: a fresh process, cwd = the repo root."""
    return subprocess.run([sys.executable, "-m", "generator", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (relative path -> bytes), hidden ones included."""
    if not directory.exists():
        return {}
    return {str(path.relative_to(directory)): path.read_bytes()
            for path in sorted(directory.rglob("*")) if path.is_file()}


def write_yaml(path: Path, document: dict) -> Path:
    path.write_text(topologies.to_yaml(document), encoding="utf-8")
    return path


def topology_doc(services: dict, **top) -> dict:
    return {"app": "demo", "namespace": "demo.internal", **top, "services": services}


class Outcome:
    """A `generate` run with the output directory's bytes before and after it."""

    def __init__(self, result: subprocess.CompletedProcess, before: dict, after: dict,
                 out: Path):
        self.result = result
        self.before = before
        self.after = after
        self.out = out
        self.lines = result.stderr.splitlines()

    @property
    def line(self) -> str:
        return self.lines[0] if self.lines else ""


def assert_refused(outcome: Outcome, *must_name: str) -> str:
    """Exit 2, exactly one line on stderr naming every string in `must_name`, nothing on
    stdout, and the output directory byte for byte as it was."""
    result = outcome.result
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:],
                                    result.stderr[-2000:])
    assert len(outcome.lines) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for text in must_name:
        assert text in outcome.line, (text, outcome.line)
    assert result.stdout == "", result.stdout[-2000:]
    assert outcome.after == outcome.before, "a refused topology changed the output directory"
    return outcome.line


def assert_accepted(outcome: Outcome) -> None:
    result = outcome.result
    assert result.returncode == 0, (result.returncode, result.stdout[-2000:],
                                    result.stderr[-2000:])
    assert outcome.after != outcome.before, "an accepted topology wrote nothing"


class _CfnLoader(yaml.SafeLoader):
    """Plain YAML, with CloudFormation's short forms (!Ref X, !Sub ...) read as their long
    forms ({"Ref": X}, {"Fn::Sub": ...})."""


def _intrinsic(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path) -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506


def ingress_parameters(out: Path) -> dict[str, dict[str, str]]:
    """service -> its ingress stack's parameters, read from the samconfig.toml `generate`
    writes beside `out` (the ingress stacks have no params file)."""
    import re
    import tomllib

    config = tomllib.loads((out.parent / "samconfig.toml").read_text(encoding="utf-8"))
    result = {}
    for environment in config.values():
        deploy = environment.get("deploy", {}).get("parameters", {}) \
            if isinstance(environment, dict) else {}
        if deploy.get("template_file", "").endswith("/ingress.yaml"):
            values = dict(re.fullmatch(r'([^=]+)="(.*)"', item).groups()
                          for item in deploy["parameter_overrides"])
            result[values["ServiceName"]] = values
    return result
