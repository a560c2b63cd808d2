"""A dashboard body drawn as a small SVG: the README's picture of the layout.

Each widget is a box at its grid place (x, y, width, height of the body), holding its
title (or a text widget's first lines) and, for a graph, the label of each line it draws.
No data: the picture shows what is where, not what the metrics were.

    python -m generator.dashboardpicture templates/dashboards/demo.json docs/dashboard.svg

tests/dashboard/test_dashboard_picture.py checks that docs/dashboard.svg is what this
draws from the committed dashboard.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from xml.sax.saxutils import escape

UNIT_X = 36  # pixels per grid column (24 columns)
UNIT_Y = 22  # pixels per grid row
PAD = 4
LINE = 13
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def _text_lines(widget: dict) -> list[str]:
    properties = widget.get("properties", {})
    if widget["type"] == "text":
        lines = [line.lstrip("#").strip().removeprefix("- ").replace("`", "") for line in
                 properties.get("markdown", "").splitlines() if line.strip()]
        return lines
    return [properties.get("title", "")]


def _wrap(text: str, width: int) -> list[str]:
    room = max(4, (width - 2 * PAD) // 6)
    lines, current = [], ""
    words = [word[i:i + room] for word in text.split() for i in range(0, len(word), room)]
    for word in words:
        if current and len(current) + 1 + len(word) > room:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    return lines + [current] if current else lines


def _fit(text: str, width: int) -> str:
    room = max(4, (width - 2 * PAD) // 6)
    return text if len(text) <= room else text[:room - 1] + "…"


def svg(body: dict) -> str:
    widgets = body["widgets"]
    width = 24 * UNIT_X
    height = max(w["y"] + w["height"] for w in widgets) * UNIT_Y
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="#f4f5f7"/>']
    for widget in widgets:
        x, y = widget["x"] * UNIT_X, widget["y"] * UNIT_Y
        w, h = widget["width"] * UNIT_X, widget["height"] * UNIT_Y
        out.append(f'<rect x="{x + 2}" y="{y + 2}" width="{w - 4}" height="{h - 4}" '
                   'fill="#ffffff" stroke="#aab2bd" rx="3"/>')
        lines = _text_lines(widget)
        rows = (h - 2 * PAD) // LINE
        if widget["type"] == "text":
            lines = [part for text in lines for part in _wrap(text, w)]
            for index, text in enumerate(lines[:rows]):
                weight = ' font-weight="bold"' if index == 0 else ""
                out.append(f'<text x="{x + PAD + 2}" y="{y + PAD + LINE * (index + 1)}"'
                           f'{weight}>{escape(_fit(text, w))}</text>')
            continue
        out.append(f'<text x="{x + PAD + 2}" y="{y + PAD + LINE}" font-weight="bold">'
                   f'{escape(_fit(lines[0], w))}</text>')
        metrics = widget["properties"].get("metrics", [])
        # The plot area, then one legend entry per line drawn.
        plot_top, plot_bottom = y + PAD + LINE + 4, y + h - PAD - LINE * min(len(metrics), 3) - 6
        out.append(f'<line x1="{x + PAD + 4}" y1="{plot_bottom}" x2="{x + w - PAD - 4}" '
                   f'y2="{plot_bottom}" stroke="#cccccc"/>')
        out.append(f'<line x1="{x + PAD + 4}" y1="{plot_top}" x2="{x + PAD + 4}" '
                   f'y2="{plot_bottom}" stroke="#cccccc"/>')
        shown = metrics[:3]
        for index, line in enumerate(shown):
            label = line[-1].get("label", line[1]) if isinstance(line[-1], dict) else line[1]
            if index == 2 and len(metrics) > 3:
                label = f"+{len(metrics) - 2} more lines"
            colour = COLOURS[index % len(COLOURS)]
            ly = plot_bottom + LINE * (index + 1)
            out.append(f'<rect x="{x + PAD + 4}" y="{ly - 8}" width="8" height="8" '
                       f'fill="{colour}"/>')
            out.append(f'<text x="{x + PAD + 16}" y="{ly}">{escape(_fit(label, w - 14))}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m generator.dashboardpicture BODY.json OUT.svg", file=sys.stderr)
        return 2
    body = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    Path(args[1]).write_text(svg(body), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
