from __future__ import annotations

import random

import pytest

from generator import plan
from generator.topology import parse


def topology_from_edges(count: int, edges: dict[int, list[int]]):
    lines = ["app: t", "namespace: t.local", "services:"]
    for index in range(count):
        calls = ", ".join(f"s{callee}" for callee in edges.get(index, []))
        lines.append(f"  s{index}: {{port: {8000 + index}, calls: [{calls}]}}")
    return parse("\n".join(lines) + "\n")


def test_chain_deploys_callees_first():
    # s0 -> s1 -> s2: s2 first.
    topology = topology_from_edges(3, {0: [1], 1: [2]})
    result = plan.build(topology)
    assert result.waves == (("s2",), ("s1",), ("s0",))
    assert result.cycles == ()


def test_independent_services_share_a_wave_in_file_order():
    topology = topology_from_edges(4, {0: [3], 1: [3], 2: [3]})
    assert plan.build(topology).waves == (("s3",), ("s0", "s1", "s2"))


def test_default_pair_is_one_wave_and_a_reported_cycle(default_topology):
    result = plan.build(default_topology)
    assert result.waves == (("server", "client"),)
    assert result.cycles == (("server", "client"),)
    text = plan.describe(default_topology, result)
    assert "demo-cluster" in text.splitlines()[1]
    assert "Cycle: server <-> client" in text


def test_cycle_members_wait_for_what_any_of_them_calls():
    # s0 <-> s1 is a cycle; s1 also calls s2, so the cycle's wave follows s2's.
    topology = topology_from_edges(3, {0: [1], 1: [0, 2]})
    result = plan.build(topology)
    assert result.waves == (("s2",), ("s0", "s1"))
    assert result.cycles == (("s0", "s1"),)


@pytest.mark.parametrize("seed", range(25))
def test_random_graphs_respect_every_edge(seed):
    rng = random.Random(seed)
    count = rng.randint(1, 40)
    edges = {i: sorted(rng.sample([j for j in range(count) if j != i],
                                  k=min(count - 1, rng.randint(0, 3))))
             for i in range(count)}
    topology = topology_from_edges(count, edges)
    result = plan.build(topology)
    assert sorted(result.order) == sorted(s.name for s in topology.services)
    wave_of = {name: n for n, wave in enumerate(result.waves) for name in wave}
    cycle_of = {name: cycle for cycle in result.cycles for name in cycle}
    for caller, callees in edges.items():
        for callee in callees:
            a, b = f"s{caller}", f"s{callee}"
            if a in cycle_of and cycle_of.get(b) is cycle_of[a]:
                assert wave_of[a] == wave_of[b]
            else:
                assert wave_of[b] < wave_of[a], (a, b)
    # Waves are as early as possible: each non-first wave holds a service that
    # depends on something in the wave just before it.
    for n in range(1, len(result.waves)):
        assert any(wave_of[c] == n - 1 for name in result.waves[n]
                   for c in topology.service(name).calls)


def test_deep_chain_does_not_recurse():
    count = 3000
    topology = topology_from_edges(count, {i: [i + 1] for i in range(count - 1)})
    assert len(plan.build(topology).waves) == count


def test_mermaid_has_a_node_per_service_and_an_edge_per_call(rich_topology):
    diagram = plan.mermaid(rich_topology)
    assert diagram.startswith("flowchart LR\n")
    assert 'svc_payments["payments<br/>pay.internal.shop:8443"]' in diagram
    edges = [line for line in diagram.splitlines() if "-->|http|" in line]
    assert len(edges) == sum(len(s.calls) for s in rich_topology.services)
    assert "internet -->|ALB :80| svc_web" in diagram
