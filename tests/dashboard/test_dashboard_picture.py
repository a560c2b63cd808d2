"""docs/dashboard.svg, the README's picture of the layout, is drawn from the committed
dashboard of the default topology by generator.dashboardpicture: it cannot drift."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from generator import dashboardpicture

ROOT = Path(__file__).resolve().parents[2]
BODY = ROOT / "templates" / "dashboards" / "demo.json"
PICTURE = ROOT / "docs" / "dashboard.svg"


def test_the_committed_picture_is_drawn_from_the_committed_dashboard():
    body = json.loads(BODY.read_text(encoding="utf-8"))
    assert PICTURE.read_text(encoding="utf-8") == dashboardpicture.svg(body), (
        "run `python -m generator.dashboardpicture templates/dashboards/demo.json "
        "docs/dashboard.svg` and commit it")


def test_one_box_per_widget_with_its_title():
    body = json.loads(BODY.read_text(encoding="utf-8"))
    root = ElementTree.fromstring(dashboardpicture.svg(body))
    namespace = "{http://www.w3.org/2000/svg}"
    boxes = [r for r in root.iter(f"{namespace}rect") if r.get("rx") == "3"]
    assert len(boxes) == len(body["widgets"])
    texts = [t.text for t in root.iter(f"{namespace}text")]
    titles = [w["properties"]["title"] for w in body["widgets"] if w["type"] == "metric"]
    assert all(title in texts for title in titles)
