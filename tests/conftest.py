"""Fixtures shared by every test area; each area keeps its own in tests/<area>/conftest.py."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from generator import topology as topology_module

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def default_topology() -> topology_module.Topology:
    return topology_module.load(REPO_ROOT / "topology.yaml")


@pytest.fixture
def write_topology(tmp_path: Path):
    """Write YAML text (dedented) to a topology file in tmp_path and return its path."""

    def write(text: str, name: str = "topology.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write
