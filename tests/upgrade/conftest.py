"""Fixtures of the upgrade model's tests (helpers and topologies: upgrade_fixtures.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from upgrade_fixtures import HISTORY, render_topology


@pytest.fixture(scope="session")
def history_dirs(tmp_path_factory) -> list[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("history")
    return [(name, render_topology(text, root / f"{index}-{name.replace(' ', '-')}"))
            for index, (name, text) in enumerate(HISTORY)]
