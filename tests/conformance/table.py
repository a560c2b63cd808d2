"""docs/conformance.md from requirements.py: `python -m tests.conformance.table > docs/conformance.md`."""
from __future__ import annotations

from tests.conformance.requirements import MISSING_FEATURES, REQUIREMENTS


def markdown() -> str:
    lines = [
        "# Conformance matrix",
        "",
        "Requirements AWS documents for the features the templates and the deployer use,",
        "each checked by `tests/conformance/test_conformance.py` (and `checks_delivery.py`)",
        "against the templates",
        "rendered from the default and the workloads topology. Generated from",
        "`tests/conformance/requirements.py` (`python -m tests.conformance.table`).",
        "",
        f"{len(REQUIREMENTS)} requirements.",
        "",
        "| id | feature | requirement (quoted) | page | check |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in REQUIREMENTS:
        quote = r.quote.replace("|", "\\|")
        lines.append(f"| {r.id} | {r.feature} | \"{quote}\" | <{r.url}> | `{r.check}` |")
    if MISSING_FEATURES:
        lines += ["", "Features with no record yet: " + ", ".join(MISSING_FEATURES) + "."]
    else:
        lines += ["", "Every feature of issue 14's list has at least one record."]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
