"""`make run` (python -m service.run): the topology's services on loopback, stopped by Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from service.run import local_environments

pytestmark = pytest.mark.integration


def consecutive_free_ports(count: int) -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no consecutive free ports")


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def test_local_environments_follow_the_topology(rich_topology_for_run):
    envs = local_environments(rich_topology_for_run, 9000)
    assert envs["web"]["PEER_URLS"] == "api=http://127.0.0.1:9001"
    assert envs["api"]["PEER_URLS"] == ""
    assert envs["web"]["LOG_LEVEL"] == "debug"
    assert envs["api"]["HEALTH_CHECK_PATH"] == "/live"


@pytest.fixture
def rich_topology_for_run(tmp_path):
    from generator.topology import load

    path = tmp_path / "topology.yaml"
    path.write_text("app: t\nnamespace: t.local\nservices:\n"
                    "  web: {port: 8080, calls: [api], environment: {LOG_LEVEL: debug}}\n"
                    "  api: {port: 8080, health_check_path: /live}\n")
    return load(path)


def test_ctrl_c_stops_every_service(tmp_path, repo_root):
    topology = tmp_path / "topology.yaml"
    topology.write_text("app: t\nnamespace: t.local\nservices:\n"
                        "  web: {port: 8080, calls: [api]}\n  api: {port: 8080}\n")
    base = consecutive_free_ports(2)
    run = subprocess.Popen(
        [sys.executable, "-m", "service.run", "--topology", str(topology), "--base-port", str(base)],
        cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        answer = None
        while time.monotonic() < deadline and answer is None:
            try:
                answer = get_json(f"http://127.0.0.1:{base}/peers")
            except OSError:
                time.sleep(0.2)
        assert answer is not None, run.stderr.read() if run.poll() is not None else "not ready"
        assert answer["ok"] is True
        assert answer["peers"][0]["answer"]["service"] == "api"
        # What a terminal's Ctrl-C does: SIGINT to the whole foreground process group.
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=40) == 0
        for port in (base, base + 1):
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def test_bad_topology_is_one_line_and_exit_2(tmp_path, repo_root):
    topology = tmp_path / "topology.yaml"
    topology.write_text("app: t\nnamespace: t.local\nservices:\n  web: {port: 8080, calls: [ghost]}\n")
    result = subprocess.run([sys.executable, "-m", "service.run", "--topology", str(topology)],
                            cwd=repo_root, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"run: {topology}: services.web.calls[0]: unknown service 'ghost' (known: web)")
