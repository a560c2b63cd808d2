"""Command-line entry points whose reader goes away (`python -m generator plan | head`): no
traceback, exit status 141 (generator/cli.py quiet_when_the_reader_leaves)."""
from __future__ import annotations

import os
import subprocess
import sys

from generator.cli import EXIT_BROKEN_PIPE


def run_into_a_closed_pipe(repo_root, *args: str) -> subprocess.CompletedProcess:
    """Run `python args...` with stdout into a pipe whose reader has already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, *args], cwd=repo_root, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)


def test_plan_into_a_reader_that_left_ends_quietly_with_141(repo_root):
    result = run_into_a_closed_pipe(repo_root, "-m", "generator", "plan")
    assert result.stderr == ""
    assert result.returncode == EXIT_BROKEN_PIPE


def test_plan_piped_into_head_ends_quietly(repo_root):
    # The shell pipeline a newcomer typed; head leaves after one line.
    result = subprocess.run(f"'{sys.executable}' -m generator plan | head -n 1", shell=True,
                            cwd=repo_root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 1
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr


def test_plan_still_prints_when_the_reader_stays(repo_root):
    result = subprocess.run([sys.executable, "-m", "generator", "plan"], cwd=repo_root,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() and result.stderr == ""
