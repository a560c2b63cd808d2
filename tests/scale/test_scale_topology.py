"""The 300-service topology that the other scale tests and the benchmark use has the
shape issue 9 asks for; if the generator drifts, these say how."""
from __future__ import annotations

from collections import Counter

from scalekit import topologies


def _callers(document: dict) -> Counter:
    return Counter(callee for s in document["services"].values() for callee in s["calls"])


def test_size_fan_out_and_edges(scale_document):
    services = scale_document["services"]
    assert len(services) == 300
    fan_out = [len(s["calls"]) for s in services.values()]
    assert min(fan_out) == 3 and max(fan_out) == 5
    assert 1150 <= sum(fan_out) <= 1250  # about 1,200 call edges
    for name, settings in services.items():
        assert name not in settings["calls"]
        assert len(set(settings["calls"])) == len(settings["calls"])
        assert set(settings["calls"]) <= set(services)


def test_hub_called_by_55_and_nobody_else_near_the_rules_quota(scale_document):
    callers = _callers(scale_document)
    hub, count = callers.most_common(1)[0]
    assert (hub, count) == (topologies.HUB, 55)
    assert max(n for name, n in callers.items() if name != hub) <= 20


def test_mutual_pairs_public_services_and_environment(scale_document):
    services = scale_document["services"]
    mutual = {frozenset((a, b)) for a, s in services.items() for b in s["calls"]
              if a in services[b]["calls"]}
    assert len(mutual) >= 10
    public = [name for name, s in services.items() if s.get("public")]
    assert 25 <= len(public) <= 35  # about 10%
    names = Counter(var for s in services.values() for var in s.get("environment", {}))
    shared = [var for var, n in names.items() if n == len(services)]
    assert shared == ["LOG_LEVEL"]
    assert 5 <= len(names) <= 12  # a few distinct names: service.yaml's parameters stay few
    values = {s["environment"]["DB_NAME"] for s in services.values() if "DB_NAME" in s["environment"]}
    assert len(values) > 50  # per-service values


def test_deterministic():
    assert topologies.to_yaml(topologies.layered_topology(300)) == \
        topologies.to_yaml(topologies.layered_topology(300))
    assert topologies.layered_topology(300, seed=1) != topologies.layered_topology(300, seed=2)
