"""Deploy order from who calls whom, and the topology as a Mermaid diagram.

Callees deploy before their callers, so a caller's Envoy proxy, which learns the
namespace's endpoints only when its task starts, finds its callees already registered.
Services that call each other (a cycle) cannot be ordered; they share a wave and the
cycle is reported, so the redeploy rule (see `generator.rollout`) covers them.
"""
from __future__ import annotations

from dataclasses import dataclass

from generator.topology import Topology


@dataclass(frozen=True)
class Plan:
    waves: tuple[tuple[str, ...], ...]
    cycles: tuple[tuple[str, ...], ...]

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(name for wave in self.waves for name in wave)


def build(topology: Topology) -> Plan:
    components = _strongly_connected(topology)
    component_of = {name: index for index, members in enumerate(components) for name in members}
    # A component's wave is one past the deepest wave among the components it calls.
    wave_of: dict[int, int] = {}
    for index, members in enumerate(components):  # Tarjan yields callees first
        callee_waves = [
            wave_of[component_of[callee]]
            for name in members
            for callee in topology.service(name).calls
            if component_of[callee] != index
        ]
        wave_of[index] = 1 + max(callee_waves, default=-1)
    position = {service.name: i for i, service in enumerate(topology.services)}
    waves: list[list[str]] = [[] for _ in range(1 + max(wave_of.values(), default=-1))]
    for index, members in enumerate(components):
        waves[wave_of[index]].extend(members)
    cycles = sorted(
        (tuple(sorted(members, key=position.__getitem__)) for members in components
         if len(members) > 1),
        key=lambda members: position[members[0]],
    )
    return Plan(
        waves=tuple(tuple(sorted(wave, key=position.__getitem__)) for wave in waves),
        cycles=tuple(cycles),
    )


def _strongly_connected(topology: Topology) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components come out in reverse topological order."""
    index_of: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in (service.name for service in topology.services):
        if root in index_of:
            continue
        work = [(root, iter(topology.service(root).calls))]
        index_of[root] = lowlink[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, callees = work[-1]
            advanced = False
            for callee in callees:
                if callee not in index_of:
                    index_of[callee] = lowlink[callee] = counter
                    counter += 1
                    stack.append(callee)
                    on_stack.add(callee)
                    work.append((callee, iter(topology.service(callee).calls)))
                    advanced = True
                    break
                if callee in on_stack:
                    lowlink[node] = min(lowlink[node], index_of[callee])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                lowlink[parent] = min(lowlink[parent], lowlink[node])
            if lowlink[node] == index_of[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                components.append(members)
    return components


def mermaid(topology: Topology) -> str:
    """A flowchart: the namespace as a box, each service with its endpoint, an edge per call."""
    lines = [
        "flowchart LR",
        f'  subgraph ns["Cloud Map namespace {topology.namespace}"]',
    ]
    for service in topology.services:
        endpoint = topology.endpoint(service).removeprefix("http://")
        lines.append(f'    {_node(service.name)}["{service.name}<br/>{endpoint}"]')
    lines.append("  end")
    for service in topology.services:
        for callee in service.calls:
            lines.append(f"  {_node(service.name)} -->|http| {_node(callee)}")
    public = [service for service in topology.services if service.public]
    if public:
        lines.append('  internet(("internet"))')
        for service in public:
            edge = "ALB :443 HTTPS" if service.certificate_arn else "ALB :80"
            lines.append(f"  internet -->|{edge}| {_node(service.name)}")
    return "\n".join(lines) + "\n"


def _node(name: str) -> str:
    return "svc_" + name.replace("-", "_")


def describe(topology: Topology, plan: Plan) -> str:
    lines = ["Deploy order (callees before callers):", f"  0. {topology.cluster_stack_name}"]
    for number, wave in enumerate(plan.waves, start=1):
        stacks = ", ".join(topology.stack_name(topology.service(name)) for name in wave)
        parallel = "  (in parallel)" if len(wave) > 1 else ""
        lines.append(f"  {number}. {stacks}{parallel}")
    for service in topology.services:
        if service.public and not service.certificate_arn:
            lines.append(f"Warning: services.{service.name} is public without certificate_arn: "
                         "its load balancer serves HTTP only (port 80).")
    for cycle in plan.cycles:
        lines.append(
            f"Cycle: {' <-> '.join(cycle)} call each other; they deploy in one wave and each "
            "is redeployed when the other's endpoint is new (see README, 'Adding a service')."
        )
    return "\n".join(lines) + "\n"
