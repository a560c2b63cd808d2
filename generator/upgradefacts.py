"""The facts of `check-upgrade`'s approval report (issue 16): what a change does to the
app's call graph, security-group edges, running tasks and IAM, derived from an
`upgrade.UpgradeReport` and the two templates directories it compared.

`approval(report, old_files, new_files)` gathers them into an `Approval`, which
`generator.upgradereport` renders as Markdown or HTML. Pure: no AWS, no clock.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from generator import upgrade
from generator.upgrade import DeployedStack, TemplatesDir, UpgradeReport

# cluster.yaml's stand-in for "no callers": attached to no task, it only gives ingress.yaml's
# Fn::ForEach one item, so a rule from it admits nobody and is no edge.
PLACEHOLDER_GROUPS = frozenset({"NoCallersSecurityGroup"})
_GROUP_SYMBOL = re.compile(r"^\{(?P<stack>[^.{}]+)\.(?P<logical>[^.{}#]+)\.GroupId#\d+\}$")
ROLLOUT = ("forced new deployment once its cycle is deployed (rollout rule: a new "
           "DeploymentNonce)")
OWN_UPDATE = "its own service stack update, after {callee}'s stack (callees deploy first)"
# A new policy's actions can run to dozens (the bootstrap stack's deploy policies have 79):
# a created resource shows the count and the first few; a changed one every action added
# or removed, which is what an approver has to read.
_SHOWN_ACTIONS = 10


@dataclass(frozen=True, order=True)
class Edge:
    caller: str
    callee: str
    port: str

    def __str__(self) -> str:
        return f"{self.caller} -> {self.callee}:{self.port}"


@dataclass(frozen=True)
class Restart:
    caller: str
    callee: str
    how: str


@dataclass(frozen=True)
class IamChange:
    stack: str
    logical: str
    type: str
    change: str  # created, updated, replaced, deleted
    summary: str


@dataclass(frozen=True)
class Approval:
    report: UpgradeReport
    edges_added: tuple[Edge, ...]
    edges_removed: tuple[Edge, ...]
    restarts: tuple[Restart, ...]
    iam: tuple[IamChange, ...]
    calls: Mapping[str, tuple[str, ...]]  # the call graph after the change
    ports: Mapping[str, str]  # service -> container port, after
    new_services: tuple[str, ...]
    added_calls: tuple[tuple[str, str], ...]
    context: tuple[tuple[str, str], ...] = ()  # e.g. ("from", "v1.2"): shown as given

    @property
    def monitoring(self) -> tuple:
        """Alarms and dashboards created, changed, deleted (generator.upgrademonitoring)."""
        return tuple(self.report.monitoring)


def approval(report: UpgradeReport, old_files: TemplatesDir, new_files: TemplatesDir,
             context: Mapping[str, str] | None = None) -> Approval:
    old_calls = upgrade.call_graph(old_files.params)
    new_calls = upgrade.call_graph(new_files.params)
    before, after = security_group_edges(report.before), security_group_edges(report.after)
    return Approval(
        report, tuple(sorted(after - before)), tuple(sorted(before - after)),
        restarts(report, old_files, new_files), iam_changes(report), new_calls,
        {name: _parameter(new_files, name, "ContainerPort") for name in new_calls},
        tuple(name for name in new_calls if name not in old_calls),
        tuple((caller, callee) for caller, callees in new_calls.items() for callee in callees
              if callee not in old_calls.get(caller, ())),
        tuple((context or {}).items()))


# --- security-group edges -------------------------------------------------------------------

def _group_label(value: str, stacks: Mapping[str, DeployedStack]) -> str | None:
    """A group's service (its network stack's), else stack.Logical; None: no one's group."""
    match = _GROUP_SYMBOL.match(value)
    if match is None:
        return value
    stack, logical = stacks.get(match["stack"]), match["logical"]
    if logical in PLACEHOLDER_GROUPS:
        return None
    if stack is not None and stack.tags.get("kind") == "network" and stack.tags.get("service"):
        return stack.tags["service"]
    return f"{match['stack']}.{logical}"


def security_group_edges(stacks: Mapping[str, DeployedStack]) -> set[Edge]:
    """caller -> callee:port for every group-to-group ingress rule of every stack (the
    ingress stacks', and the service or cluster stacks' of older designs)."""
    edges = set()
    for stack in stacks.values():
        for resource in stack.resources.values():
            properties = resource.properties
            if resource.type != "AWS::EC2::SecurityGroupIngress" or \
                    "SourceSecurityGroupId" not in properties:
                continue
            caller = _group_label(str(properties["SourceSecurityGroupId"]), stacks)
            callee = _group_label(str(properties.get("GroupId", "")), stacks)
            low, high = str(properties.get("FromPort", "")), str(properties.get("ToPort", ""))
            if caller is not None and callee is not None:
                edges.add(Edge(caller, callee, low if low == high else f"{low}-{high}"))
    return edges


# --- the callers a new endpoint restarts -------------------------------------------------------

def _parameter(files: TemplatesDir, service: str, name: str) -> str:
    return files.params.get(service, {}).get("Parameters", {}).get(name, "")


def _namespace(stacks: Mapping[str, DeployedStack]) -> str:
    return next((str(resource.properties.get("Name", "")) for name in sorted(stacks)
                 for resource in stacks[name].resources.values()
                 if resource.type == "AWS::ServiceDiscovery::PrivateDnsNamespace"), "")


def _cycle_members(graph: Mapping[str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    """Service -> the services it shares a cycle (a deploy wave, generator.plan) with."""
    def reachable(start: str) -> set[str]:
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(graph.get(name, ()))
        return seen

    reach = {name: reachable(name) for name in graph}
    return {name: frozenset(other for other in reach[name] if name in reach.get(other, ()))
            for name in graph}


def restarts(report: UpgradeReport, old_files: TemplatesDir, new_files: TemplatesDir
             ) -> tuple[Restart, ...]:
    """Callers whose tasks restart because a callee's endpoint is new to them.

    A proxy learns the namespace's endpoints only when its task starts (generator.rollout).
    A callee outside the caller's cycle deploys first, and an existing caller's own stack
    updates after it (its PeerUrls change); a new caller simply starts then. Inside a cycle
    the two deploy together, so the rollout rule forces a new deployment of the caller when
    the endpoints it calls in its cycle change (its DeploymentNonce, a digest of them):
    a new caller's too, whose nonce starts empty and which generator.ops.deploy has settled
    by then.
    """
    old_calls = upgrade.call_graph(old_files.params)
    new_calls = upgrade.call_graph(new_files.params)
    old_cycles, new_cycles = _cycle_members(old_calls), _cycle_members(new_calls)
    old_namespace, new_namespace = _namespace(report.before), _namespace(report.after)

    def endpoint(files: TemplatesDir, namespace: str, service: str) -> str:
        # Topology.endpoint: Service Connect's client alias.
        return (f"http://{_parameter(files, service, 'DiscoveryName') or service}."
                f"{namespace}:{_parameter(files, service, 'ContainerPort')}")

    def is_new(callee: str) -> bool:
        return callee not in old_calls or endpoint(old_files, old_namespace, callee) != \
            endpoint(new_files, new_namespace, callee)

    found = []
    for caller, callees in new_calls.items():
        existing = caller in old_calls
        in_cycle = [c for c in callees if c in new_cycles[caller]]
        was_in_cycle = [c for c in old_calls.get(caller, ()) if c in old_cycles[caller]]
        redeployed = bool(in_cycle) and (
            {endpoint(new_files, new_namespace, c) for c in in_cycle}
            != {endpoint(old_files, old_namespace, c) for c in was_in_cycle})
        for callee in callees:
            if callee in in_cycle:
                if redeployed and (is_new(callee) or callee not in was_in_cycle):
                    found.append(Restart(caller, callee, ROLLOUT))
            elif existing and is_new(callee):
                found.append(Restart(caller, callee, OWN_UPDATE.format(callee=callee)))
    return tuple(found)


# --- IAM and the boundary ---------------------------------------------------------------

def _actions(node: object) -> set[str]:
    """"Effect action" of every statement in the policy documents under `node`."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= _actions(item)
    elif isinstance(node, dict):
        statements = node.get("Statement")
        if statements is not None:
            for statement in statements if isinstance(statements, list) else [statements]:
                if not isinstance(statement, dict):
                    continue
                effect = str(statement.get("Effect", "?"))
                for key, label in (("Action", ""), ("NotAction", "NotAction ")):
                    actions = statement.get(key, [])
                    for action in actions if isinstance(actions, list) else [actions]:
                        found.add(f"{effect} {label}{action}")
        for key, value in node.items():
            if key != "Statement":
                found |= _actions(value)
    return found


def _listed(actions: Iterable[str], limit: int | None = None) -> str:
    actions = sorted(actions)
    shown = actions if limit is None else actions[:limit]
    more = f" and {len(actions) - len(shown)} more" if len(actions) > len(shown) else ""
    return "; ".join(shown) + more


def _property_changes(before: dict, after: dict) -> list[str]:
    parts = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) == after.get(name):
            continue
        added = _actions(after.get(name)) - _actions(before.get(name))
        removed = _actions(before.get(name)) - _actions(after.get(name))
        detail = ", ".join(([f"+ {_listed(added)}"] if added else [])
                           + ([f"- {_listed(removed)}"] if removed else []))
        parts.append(f"{name} changed" + (f" ({detail})" if detail else ""))
    return parts


def iam_changes(report: UpgradeReport) -> tuple[IamChange, ...]:
    """Every AWS::IAM::* resource the upgrade creates, updates, replaces or deletes, in
    the order its stack is first touched (the bootstrap stack's boundary first)."""
    changes = []
    for stack, logical, resource, change, detail in report.resource_changes(
            lambda r: r.type.startswith("AWS::IAM::"), _property_changes):
        if change == "created":
            actions = _actions(resource.properties)
            detail = (f"{len(actions)} action(s): {_listed(actions, _SHOWN_ACTIONS)}"
                      if actions else "no policy statements")
        changes.append(IamChange(stack, logical, resource.type, change, detail))
    return tuple(changes)
