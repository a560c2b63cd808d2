"""Fixtures of the scale tests: the 300-service topology (benchmarks/topologies.py, the
same generator the benchmark measures), one real `generate --lint` of it, and a runner
that proves a refused topology leaves the output directory untouched.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from scalekit import Outcome, run_cli, snapshot, topologies, write_yaml


@pytest.fixture
def generate_into(tmp_path: Path):
    """Write a topology, run `generate --topology T --out OUT [extra args]` and return the
    Outcome. OUT already holds files of an earlier run (a template and a params file no
    service owns), so "nothing written" also means "nothing deleted or rewritten"."""

    def run(document: dict, *extra: str, preexisting: bool = True) -> Outcome:
        topology = write_yaml(tmp_path / "topology.yaml", document)
        out = tmp_path / "out"
        if preexisting:
            (out / "params").mkdir(parents=True, exist_ok=True)
            (out / "service.yaml").write_bytes(b"# an earlier run's template\n")
            (out / "params" / "gone.json").write_bytes(b'{"Parameters": {}}\n')
        before = snapshot(out)
        result = run_cli("generate", "--topology", topology, "--out", out, *extra)
        return Outcome(result, before, snapshot(out), out)

    return run


@pytest.fixture(scope="session")
def scale_document() -> dict:
    """The 300-service topology of issue 9 (the benchmark's large variant)."""
    return topologies.layered_topology(300)


@pytest.fixture(scope="session")
def scale_generated(scale_document, tmp_path_factory):
    """One real `generate --lint --no-cache` of the 300-service topology: (result, out)."""
    root = tmp_path_factory.mktemp("scale300")
    topology = write_yaml(root / "topology.yaml", scale_document)
    out = root / "out"
    result = run_cli("generate", "--lint", "--no-cache", "--topology", topology, "--out", out)
    return result, out
