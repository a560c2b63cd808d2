"""Fixtures for the pipeline tests: topologies built in code, plans, the generated pipeline."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from generator import plan as plan_module
from generator import topology as topology_module
from pipeline import stack as pipeline_stack


def make_topology(services: dict[str, list[str]], app: str = "demo") -> topology_module.Topology:
    """A topology from {name: [callees]}; everything else takes the loader's defaults."""
    document = {
        "app": app,
        "namespace": "my.demo",
        "services": {name: {"port": 8080, "calls": list(calls)} for name, calls in services.items()},
    }
    return topology_module.parse(yaml.safe_dump(document, sort_keys=False), "test-topology.yaml")


@pytest.fixture
def topology_of():
    return make_topology


@pytest.fixture(scope="session")
def seed_topology(repo_root: Path) -> topology_module.Topology:
    return topology_module.load(repo_root / "topology.yaml")


@pytest.fixture(scope="session")
def seed_plan(seed_topology) -> plan_module.Plan:
    return plan_module.build(seed_topology)


@pytest.fixture(scope="session")
def seed_pipeline(seed_topology) -> dict:
    """templates/pipeline.yaml for the committed topology, as a dict (long-form intrinsics)."""
    return pipeline_stack.build(seed_topology).to_dict()


@pytest.fixture(scope="session")
def big_topologies() -> dict[str, topology_module.Topology]:
    """120-service shapes that stress the 50-actions-per-stage split differently."""
    names = [f"svc{i:03d}" for i in range(120)]
    independent = {name: [] for name in names}
    chain = {name: ([names[i - 1]] if i else []) for i, name in enumerate(names)}
    # 60 mutual pairs, each pair calling the previous pair's first member.
    pairs: dict[str, list[str]] = {}
    for i in range(0, 120, 2):
        a, b = names[i], names[i + 1]
        pairs[a] = [b] + ([names[i - 2]] if i else [])
        pairs[b] = [a]
    return {
        "independent": make_topology(independent),
        "chain": make_topology(chain),
        "pairs": make_topology(pairs),
    }
