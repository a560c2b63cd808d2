"""Output for people: one line per stack event, prefixed by the stack, and plain tables."""
from __future__ import annotations

import sys
from datetime import datetime
from typing import Iterable, Sequence, TextIO


class Reporter:
    def __init__(self, out: TextIO | None = None, name_width: int = 0):
        self.out = out or sys.stdout
        self.name_width = name_width
        # Stack name -> timestamp of the first event of the operation, for "elapsed".
        self._started: dict[str, datetime] = {}

    def line(self, stack: str, text: str) -> None:
        print(f"{stack:<{self.name_width}}  {text}", file=self.out, flush=True)

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def event(self, stack: str, event: dict) -> None:
        """`stack  +12s  Service  CREATE_IN_PROGRESS  reason`."""
        stamp = event.get("Timestamp")
        started = self._started.setdefault(stack, stamp) if stamp else None
        elapsed = f"+{int((stamp - started).total_seconds()):>3}s" if started else "    ?"
        reason = " ".join(str(event.get("ResourceStatusReason") or "").split())
        text = f"{elapsed}  {event.get('LogicalResourceId', '?'):<28} " \
               f"{event.get('ResourceStatus', '?'):<20} {reason}".rstrip()
        self.line(stack, text)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces, a dashed rule under the headers."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    return "-" if value is None or value == "" else " ".join(str(value).split())
