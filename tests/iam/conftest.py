"""Fixtures for the IAM tests: every template generated into tmp_path (the committed
topology and one with a public service), read back as CloudFormation sees it, and the
boto3 call recorder (recording.py). Helpers live in templates_iam.py."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from generator import render, topology as topology_module
from recording import boto3_calls  # noqa: F401  (fixture)
from templates_iam import load_template

PUBLIC_TOPOLOGY = """\
app: shop
namespace: shop.local
services:
  web:
    port: 3000
    public: true
    calls: [orders]
  orders:
    port: 8080
"""


def _generate(out: Path, topology: topology_module.Topology) -> dict[str, dict]:
    render.write(out, render.render(topology))
    return {path.name: load_template(path) for path in sorted(out.glob("*.yaml"))}


@pytest.fixture(scope="session")
def public_topology() -> topology_module.Topology:
    return topology_module.parse(textwrap.dedent(PUBLIC_TOPOLOGY), "public-topology.yaml")


@pytest.fixture(scope="session")
def generated(tmp_path_factory, default_topology, public_topology):
    """{label: (topology, {template file name: template dict})} for both topologies."""
    return {
        label: (topology, _generate(tmp_path_factory.mktemp(label), topology))
        for label, topology in (("default", default_topology), ("public", public_topology))
    }


@pytest.fixture(scope="session")
def default_templates(generated) -> dict[str, dict]:
    return generated["default"][1]
