"""generator.rollout: who is redeployed after a wave, with which nonce."""
from __future__ import annotations

import re

from generator import plan as plan_module
from generator import rollout

NONCE_PATTERN = re.compile(r"^[A-Za-z0-9._-]{0,64}$")  # service.yaml's DeploymentNonce


def test_seed_pair_both_redeployed_after_their_shared_wave(seed_topology, seed_plan):
    assert seed_plan.waves == (("server", "client"),)
    assert rollout.schedule(seed_topology, seed_plan) == (
        (
            rollout.Redeploy("server", rollout.nonce(seed_topology, seed_plan, "server")),
            rollout.Redeploy("client", rollout.nonce(seed_topology, seed_plan, "client")),
        ),
    )


def test_nonce_fits_the_service_template_parameter(seed_topology, seed_plan):
    for service in ("server", "client"):
        value = rollout.nonce(seed_topology, seed_plan, service)
        assert value.startswith(rollout.NONCE_PREFIX)
        assert NONCE_PATTERN.match(value)


def test_acyclic_callers_are_never_redeployed(topology_of):
    topology = topology_of({"db": [], "api": ["db"], "web": ["api", "db"]})
    plan = plan_module.build(topology)
    assert plan.waves == (("db",), ("api",), ("web",))
    assert rollout.schedule(topology, plan) == ((), (), ())
    assert rollout.nonce(topology, plan, "web") == ""


def test_only_cycle_members_with_a_same_wave_callee_are_listed(topology_of):
    # a <-> b form a cycle; c is independent but shares their wave; d calls a later.
    topology = topology_of({"a": ["b"], "b": ["a"], "c": [], "d": ["a"]})
    plan = plan_module.build(topology)
    assert set(plan.waves[0]) == {"a", "b", "c"}
    assert [r.service for r in rollout.after_wave(topology, plan, 0)] == ["a", "b"]
    assert rollout.after_wave(topology, plan, 1) == ()
    assert rollout.same_wave_callees(topology, plan, "d") == ()


def test_nonce_is_stable_for_the_same_endpoints(topology_of):
    first = topology_of({"a": ["b"], "b": ["a"]})
    second = topology_of({"a": ["b"], "b": ["a"], "extra": []})
    assert rollout.nonce(first, plan_module.build(first), "a") == rollout.nonce(
        second, plan_module.build(second), "a")


def test_nonce_changes_when_a_same_wave_callee_is_added(topology_of):
    before = topology_of({"a": ["b"], "b": ["a"], "c": []})
    after = topology_of({"a": ["b", "c"], "b": ["a"], "c": ["a"]})
    assert rollout.nonce(before, plan_module.build(before), "a") != rollout.nonce(
        after, plan_module.build(after), "a")


def test_nonce_changes_when_a_callee_endpoint_changes(topology_of):
    before = topology_of({"a": ["b"], "b": ["a"]})
    moved = topology_of({"a": ["b"], "b": ["a"]})
    moved = moved.__class__(
        moved.app, moved.namespace, moved.log_retention_days,
        tuple(s if s.name != "b" else s.__class__(**{**s.__dict__, "port": 9090})
              for s in moved.services),
    )
    assert rollout.nonce(before, plan_module.build(before), "a") != rollout.nonce(
        moved, plan_module.build(moved), "a")
    # b's own callee (a) did not move, so b keeps its nonce.
    assert rollout.nonce(before, plan_module.build(before), "b") == rollout.nonce(
        moved, plan_module.build(moved), "b")


def test_needs_redeploy_compares_with_the_current_nonce():
    wanted = rollout.Redeploy("a", "sc-0123")
    assert rollout.needs_redeploy(None, wanted)  # new stack: nonce starts empty
    assert rollout.needs_redeploy("", wanted)
    assert rollout.needs_redeploy("sc-9999", wanted)
    assert not rollout.needs_redeploy("sc-0123", wanted)


def test_adding_a_service_to_an_existing_pair_redeploys_the_existing_caller(topology_of):
    """The issue's scenario: a new service joins a cycle; its existing callers restart."""
    before = topology_of({"server": ["client"], "client": ["server"]})
    after = topology_of({"server": ["client", "audit"], "client": ["server"],
                         "audit": ["server"]})
    plan_before, plan_after = plan_module.build(before), plan_module.build(after)
    current = {r.service: r.nonce for r in rollout.after_wave(before, plan_before, 0)}
    due = [r.service for wave in rollout.schedule(after, plan_after) for r in wave
           if rollout.needs_redeploy(current.get(r.service), r)]
    # server now calls audit in its own wave; audit is new; client's callees are unchanged.
    assert due == ["server", "audit"]
