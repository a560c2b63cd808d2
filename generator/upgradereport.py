"""The approval report of `check-upgrade` (issue 16): what a change does, for the person
who approves it before production, as Markdown or one self-contained HTML file.

`approval(report, old_files, new_files)` derives the facts from an `upgrade.UpgradeReport`
and the two templates directories it compared; `format_markdown` and `format_html` render
the same sections from the same rows (`sections`), so the two formats cannot disagree.
Nothing here reads the clock or the environment: the same input gives the same bytes.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from generator import upgrade
from generator.upgrade import DeployedStack, TemplatesDir, UpgradeReport

# The mermaid page's own usage: this ESM import renders every <pre class="mermaid"> at
# page load (https://mermaid.js.org/config/usage).
MERMAID_SCRIPT = ('<script type="module">import mermaid from '
                  '"https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.esm.min.mjs";'
                  '</script>')
# cluster.yaml's stand-in for "no callers": attached to no task, it only gives ingress.yaml's
# Fn::ForEach one item, so a rule from it admits nobody and is no edge.
PLACEHOLDER_GROUPS = frozenset({"NoCallersSecurityGroup"})
_GROUP_SYMBOL = re.compile(r"^\{(?P<stack>[^.{}]+)\.(?P<logical>[^.{}#]+)\.GroupId#\d+\}$")
ROLLOUT = ("forced new deployment once its cycle is deployed (rollout rule: a new "
           "DeploymentNonce)")
OWN_UPDATE = "its own service stack update, after {callee}'s stack (callees deploy first)"
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
    """Existing callers whose tasks restart because a callee's endpoint is new.

    A proxy learns the namespace's endpoints only when its task starts (generator.rollout).
    A callee outside the caller's cycle deploys first, and the caller's own stack updates
    after it (its PeerUrls change). Inside a cycle the two deploy together, so the rollout
    rule forces a new deployment of the caller when the endpoints it calls in its cycle
    change (its DeploymentNonce, a digest of them); generator.ops.deploy does it only for a
    stack that existed before the run.
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
        if caller not in old_calls:
            continue  # a new service's tasks start after its callees anyway
        in_cycle = [c for c in callees if c in new_cycles[caller]]
        was_in_cycle = [c for c in old_calls[caller] if c in old_cycles[caller]]
        redeployed = bool(in_cycle) and (
            {endpoint(new_files, new_namespace, c) for c in in_cycle}
            != {endpoint(old_files, old_namespace, c) for c in was_in_cycle})
        for callee in callees:
            if callee in in_cycle:
                if redeployed and (is_new(callee) or callee not in was_in_cycle):
                    found.append(Restart(caller, callee, ROLLOUT))
            elif is_new(callee):
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
    replacements = {(op.stack, r.logical): r for op in report.operations
                    for r in op.replacements}
    stacks = list(dict.fromkeys(op.stack for op in report.operations if op.action != "no-op"))
    changes = []
    for name in stacks:
        old, new = report.before.get(name), report.after.get(name)
        before = {k: r for k, r in (old.resources if old else {}).items()
                  if r.type.startswith("AWS::IAM::")}
        after = {k: r for k, r in (new.resources if new else {}).items()
                 if r.type.startswith("AWS::IAM::")}
        for logical in sorted(set(before) | set(after)):
            if logical not in after:
                resource = before[logical]
                changes.append(IamChange(name, logical, resource.type, "deleted",
                                         "the stack is deleted" if new is None else
                                         "no longer in the template"))
                continue
            resource = after[logical]
            if logical not in before:
                actions = _actions(resource.properties)
                changes.append(IamChange(name, logical, resource.type, "created",
                                         f"{len(actions)} action(s): "
                                         f"{_listed(actions, _SHOWN_ACTIONS)}" if actions
                                         else "no policy statements"))
                continue
            parts = _property_changes(before[logical].properties, resource.properties)
            if resource.generation != before[logical].generation:
                replacement = replacements.get((name, logical))
                why = ", ".join(replacement.properties) if replacement else ""
                changes.append(IamChange(name, logical, resource.type, "replaced", "; ".join(
                    [f"because {why or 'a replaced dependency'} changes"] + parts)))
            elif parts:
                changes.append(IamChange(name, logical, resource.type, "updated",
                                         "; ".join(parts)))
    return tuple(changes)


# --- the sections, once for both formats ---------------------------------------------------

@dataclass(frozen=True)
class Link:
    text: str
    href: str


@dataclass(frozen=True)
class Section:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str | Link, ...], ...]
    empty: str = "None."
    intro: str = ""


def verdict(report: UpgradeReport) -> str:
    failures = report.failures
    if failures:
        return f"check-upgrade: {len(failures)} predicted failure(s)"
    return f"check-upgrade: OK ({len(report.operations)} stack operations)"


def sections(approval: Approval) -> list[Section]:
    report = approval.report
    operations = report.operations
    no_ops = sum(op.action == "no-op" for op in operations)
    result = [Section(
        "Stacks", ("action", "stack", "template", "by"),
        tuple((op.action, op.stack, op.template, op.by) for verb in ("create", "update", "delete")
              for op in operations if op.action == verb),
        intro=f"{sum(op.action == 'create' for op in operations)} created, "
              f"{sum(op.action == 'update' for op in operations)} updated, "
              f"{sum(op.action == 'delete' for op in operations)} deleted, {no_ops} no-op(s).")]
    result.append(Section(
        "Resources replaced", ("stack", "resource", "type", "because it changes"),
        tuple((op.stack, r.logical, r.type, ", ".join(r.properties) or "a replaced dependency")
              for op in operations for r in op.replacements)))
    result.append(Section(
        "Callers restarted", ("caller", "new callee", "how"),
        tuple((r.caller, r.callee, r.how) for r in approval.restarts),
        intro="A Service Connect proxy learns the namespace's endpoints only when its task "
              "starts, so a caller of a new endpoint restarts after it."))
    result.append(Section(
        "Security-group edges", ("change", "edge"),
        tuple(("added", str(edge)) for edge in approval.edges_added)
        + tuple(("removed", str(edge)) for edge in approval.edges_removed)))
    result.append(Section(
        "IAM and boundary changes", ("stack", "resource", "type", "change", "summary"),
        tuple((c.stack, c.logical, c.type, c.change, c.summary) for c in approval.iam)))
    result.append(Section(
        "Predicted failures", ("stack", "rule", "why", "documentation"),
        tuple((f.stack, f.rule, f.message, Link(f.why, f.why)) for f in report.failures)))
    notes = tuple(("", "note", note, "") for note in report.notes) + tuple(
        (f.stack, f.rule, f.message, Link(f.why, f.why))
        for op in operations for f in op.findings if not f.failure)
    if notes:
        result.append(Section("Notes", ("stack", "rule", "note", "documentation"), notes))
    return result


def mermaid(approval: Approval) -> str:
    """The call graph after the change; new services and added calls are drawn thicker
    (flowchart classDef and linkStyle: https://mermaid.js.org/syntax/flowchart.html)."""
    def node(name: str) -> str:
        return "svc_" + re.sub(r"[^A-Za-z0-9_]", "_", name)

    def label(text: str) -> str:
        return '"' + text.replace('"', "#quot;") + '"'

    new = set(approval.new_services)
    added = set(approval.added_calls)
    lines = ["flowchart LR"]
    for name in approval.calls:
        suffix = " (new)" if name in new else ""
        lines.append(f"  {node(name)}[{label(name + suffix)}]"
                     + (":::new" if name in new else ""))
    thick = []
    index = 0
    for caller, callees in approval.calls.items():
        for callee in callees:
            port = approval.ports.get(callee, "")
            added_here = (caller, callee) in added
            text = f":{port}" + (" added" if added_here else "")
            lines.append(f"  {node(caller)} -->|{label(text)}| {node(callee)}")
            if added_here:
                thick.append(str(index))
            index += 1
    lines.append("  classDef new stroke-width:4px,stroke-dasharray:6 3")
    if thick:
        lines.append(f"  linkStyle {','.join(thick)} stroke-width:4px")
    return "\n".join(lines) + "\n"


def _linkable(href: str) -> bool:
    return href.startswith(("https://", "http://"))


# --- Markdown ---------------------------------------------------------------------------------

def _md(value: str | Link) -> str:
    if isinstance(value, Link) and _linkable(value.href):
        href = value.href.replace("<", "%3C").replace(">", "%3E").replace(" ", "%20")
        return f"[{_md(value.text)}](<{href}>)"
    if isinstance(value, Link):
        value = value.text
    text = " ".join(str(value).split())
    return re.sub(r"([\\`*_\[\]|<])", r"\\\1", text)


def format_markdown(approval: Approval) -> str:
    lines = [f"# {_md(verdict(approval.report))}", ""]
    lines += [f"- {_md(key)}: {_md(value)}" for key, value in approval.context]
    lines += [""] if approval.context else []
    for section in sections(approval):
        lines += [f"## {_md(section.title)}", ""]
        if section.intro:
            lines += [_md(section.intro), ""]
        if not section.rows:
            lines += [section.empty, ""]
            continue
        lines.append("| " + " | ".join(_md(h) for h in section.headers) + " |")
        lines.append("|" + "---|" * len(section.headers))
        lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in section.rows]
        lines.append("")
    lines += ["## Call graph after the change", "", "```mermaid", mermaid(approval).rstrip(),
              "```", ""]
    return "\n".join(lines)


# --- HTML -----------------------------------------------------------------------------------

_STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}"
          "table{border-collapse:collapse;margin-bottom:1em}"
          "th,td{border:1px solid #999;padding:.3em .6em;text-align:left;vertical-align:top}"
          "th{background:#eee}.failed{color:#a00}.ok{color:#060}"
          "pre{background:#f6f6f6;padding:1em;overflow:auto}")


def _html(value: str | Link) -> str:
    if isinstance(value, Link) and _linkable(value.href):
        return f'<a href="{html.escape(value.href)}">{html.escape(value.text)}</a>'
    if isinstance(value, Link):
        value = value.text
    return html.escape(str(value))


def format_html(approval: Approval) -> str:
    title = verdict(approval.report)
    state = "failed" if approval.report.failures else "ok"
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{_html(title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
           f'<h1 class="{state}">{_html(title)}</h1>']
    if approval.context:
        out.append("<dl>" + "".join(f"<dt>{_html(key)}</dt><dd>{_html(value)}</dd>"
                                    for key, value in approval.context) + "</dl>")
    for section in sections(approval):
        out.append(f"<h2>{_html(section.title)}</h2>")
        if section.intro:
            out.append(f"<p>{_html(section.intro)}</p>")
        if not section.rows:
            out.append(f"<p>{_html(section.empty)}</p>")
            continue
        out.append("<table>")
        out.append("<tr>" + "".join(f"<th>{_html(h)}</th>" for h in section.headers) + "</tr>")
        out += ["<tr>" + "".join(f"<td>{_html(cell)}</td>" for cell in row) + "</tr>"
                for row in section.rows]
        out.append("</table>")
    out += ["<h2>Call graph after the change</h2>",
            # Drawn by mermaid from a CDN in the approver's browser; without it (offline)
            # the block stays readable as the diagram's source.
            "<!-- mermaid (CDN): renders the block below; the report reads without it -->",
            f'<pre class="mermaid">{_html(mermaid(approval))}</pre>',
            MERMAID_SCRIPT, "</body>", "</html>", ""]
    return "\n".join(out)


FORMATS = {"markdown": format_markdown, "html": format_html}
