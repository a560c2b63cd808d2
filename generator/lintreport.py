"""Lint findings and how they are reported: text for people, JSON and JUnit for CI."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    column: int
    rule: str
    level: str  # error | warning | informational
    message: str



def format_text(findings: list[Finding], linted: list[str]) -> str:
    lines = [
        f"{f.file}:{f.line}:{f.column}: {f.rule} [{f.level}] {f.message}" for f in findings
    ]
    # Informational findings (e.g. P2001, an HTTP-only public service) are shown but do
    # not make a file unclean, just as they do not fail the command.
    failing = [f for f in findings if f.level in ("error", "warning")]
    notes = len(findings) - len(failing)
    verdict = (
        f"lint: {len(failing)} finding(s) in {len({f.file for f in failing})} of "
        f"{len(linted)} file(s)" if failing else f"lint: {len(linted)} file(s) clean"
    ) + (f" ({notes} informational)" if notes else "")
    return "\n".join(lines + [verdict]) + "\n"


def format_json(findings: list[Finding], linted: list[str]) -> str:
    return json.dumps({"files": linted, "findings": [asdict(f) for f in findings]},
                      indent=2) + "\n"


def format_junit(findings: list[Finding], linted: list[str]) -> str:
    """One test case per file; a file with findings fails with all of them in its body."""
    from xml.sax.saxutils import quoteattr  # imports urllib: only junit pays for it

    by_file: dict[str, list[Finding]] = {name: [] for name in linted}
    for finding in findings:
        if finding.level in ("error", "warning"):  # informational ones fail nothing
            by_file.setdefault(finding.file, []).append(finding)
    failed = sum(1 for items in by_file.values() if items)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuites name="lint" tests="{len(by_file)}" failures="{failed}">',
        f'  <testsuite name="lint" tests="{len(by_file)}" failures="{failed}" errors="0">',
    ]
    for name, items in by_file.items():
        lines.append(f'    <testcase classname="lint" name={quoteattr(name)}>')
        if items:
            summary = f"{len(items)} finding(s): " + ", ".join(sorted({i.rule for i in items}))
            body = "\n".join(f"{i.file}:{i.line}:{i.column}: {i.rule} {i.message}" for i in items)
            lines.append(f"      <failure message={quoteattr(summary)}>{_escape(body)}</failure>")
        lines.append("    </testcase>")
    lines += ["  </testsuite>", "</testsuites>"]
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


FORMATS = {"text": format_text, "json": format_json, "junit": format_junit}
