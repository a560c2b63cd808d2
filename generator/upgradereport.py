"""The approval report of `check-upgrade --format markdown|html` (issue 16): what a change
does, for the person who approves it before production, as Markdown or as one
self-contained HTML file.

Both formats render the same rows (`sections`) of an `upgradefacts.Approval`, so they
cannot disagree. Every value is escaped (stack names, findings and parameters can hold
user text). Nothing here reads the clock: the same input gives the same bytes.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass

from generator.upgrade import UpgradeReport
from generator.upgradefacts import Approval

# The mermaid page's own usage: this ESM import renders every <pre class="mermaid"> at
# page load (https://mermaid.js.org/config/usage).
MERMAID_SCRIPT = ('<script type="module">import mermaid from '
                  '"https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.esm.min.mjs";'
                  '</script>')


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
        "Alarms and dashboards", ("kind", "stack or file", "name", "change", "summary"),
        tuple((c.kind, c.where, c.name, c.change, c.summary) for c in approval.monitoring),
        intro="The alarms a deployment rolls back on, and the dashboards on-call reads."))
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
        # Service names are DNS labels; anything else must not end the Markdown fence.
        return '"' + re.sub(r"[^\w .:()-]", "_", text) + '"'

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
