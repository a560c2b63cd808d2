"""docs/conformance.md from requirements.py: `python -m tests.conformance.table > docs/conformance.md`."""
from __future__ import annotations

from tests.conformance.requirements import FEATURES, MISSING_FEATURES, REQUIREMENTS


def markdown() -> str:
    lines = [
        "# Conformance matrix",
        "",
        "Requirements AWS documents for the features the templates and the deployer use,",
        "each checked by `tests/conformance/test_conformance.py` (the checks themselves there",
        "and in `checks_service.py`, `checks_delivery.py`) against the templates rendered",
        "from the default and the workloads topology, or against the deployer's code;",
        "`test_negative_controls.py` shows each later check failing on a template that breaks",
        "its requirement. Grouped by feature. Generated from",
        "`tests/conformance/requirements.py` (`python -m tests.conformance.table`).",
        "",
        f"{len(REQUIREMENTS)} requirements.",
        "",
        "| id | feature | requirement (quoted) | page | check |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in sorted(REQUIREMENTS, key=lambda r: FEATURES.index(r.feature)):
        # Escaped so <project-name> and the like show as text, not as HTML tags.
        quote = r.quote.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        lines.append(f"| {r.id} | {r.feature} | \"{quote}\" | <{r.url}> | `{r.check}` |")
    if MISSING_FEATURES:
        lines += ["", "Features with no record yet: " + ", ".join(MISSING_FEATURES) + "."]
    else:
        lines += ["", "Every feature of issue 14's list has at least one record."]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
