"""`make run` (python -m service.run): the topology's services on loopback, stopped by Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
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


@pytest.fixture
def make_run(tmp_path, repo_root):
    """make_run() -> (the `make run` process for web -> api, web's port); killed after."""
    runs = []

    def start():
        topology = tmp_path / "topology.yaml"
        topology.write_text("app: t\nnamespace: t.local\nservices:\n"
                            "  web: {port: 8080, calls: [api]}\n  api: {port: 8080}\n")
        base = consecutive_free_ports(2)
        run = subprocess.Popen(
            [sys.executable, "-m", "service.run", "--topology", str(topology),
             "--base-port", str(base)],
            cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        runs.append(run)
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
        return run, base

    yield start
    for run in runs:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def ctrl_c(run) -> int:
    # What a terminal's Ctrl-C does: SIGINT to the whole foreground process group.
    os.killpg(run.pid, signal.SIGINT)
    return run.wait(timeout=40)


def test_ctrl_c_stops_every_service(make_run):
    run, base = make_run()
    assert ctrl_c(run) == 0
    for port in (base, base + 1):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    # Gunicorn's own log line: loopback, not the container's 0.0.0.0.
    stderr = run.stderr.read()
    assert f"Listening at: http://127.0.0.1:{base} " in stderr
    assert f"Listening at: http://127.0.0.1:{base + 1} " in stderr
    assert "0.0.0.0" not in stderr


def gunicorn_master_of(run, service: str) -> int:
    """The pid of the Gunicorn master `make run` started for `service`."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/environ", "rb") as environ:
                variables = environ.read().split(b"\0")
        except OSError:
            continue
        if parent == run.pid and f"SERVICE_NAME={service}".encode() in variables:
            return int(entry)
    raise AssertionError(f"no Gunicorn master for {service} under {run.pid}")


def test_a_crashed_service_is_reported_and_the_others_keep_running(make_run):
    run, base = make_run()
    master = gunicorn_master_of(run, "api")
    os.killpg(master, signal.SIGKILL)  # a crash: the master and its workers, no clean-up
    deadline = time.monotonic() + 20
    answer = None
    while time.monotonic() < deadline:
        answer = get_json_or_error(f"http://127.0.0.1:{base}/peers")
        # The first call may still find a pooled connection being reset; then it settles.
        if answer["peers"][0].get("error") == "connection refused":
            break
        time.sleep(0.2)
    # web is still up and its /peers reports api's failure.
    assert answer["ok"] is False
    assert answer["peers"][0]["name"] == "api"
    assert answer["peers"][0]["error"] == "connection refused"
    assert run.poll() is None
    assert ctrl_c(run) == 1  # a service had exited
    assert "run: api exited with -9; the others keep running" in run.stderr.read()


def get_json_or_error(url: str):
    try:
        return get_json(url)
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


def test_bad_topology_is_one_line_and_exit_2(tmp_path, repo_root):
    topology = tmp_path / "topology.yaml"
    topology.write_text("app: t\nnamespace: t.local\nservices:\n  web: {port: 8080, calls: [ghost]}\n")
    result = subprocess.run([sys.executable, "-m", "service.run", "--topology", str(topology)],
                            cwd=repo_root, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"run: {topology}: services.web.calls[0]: unknown service 'ghost' (known: web)")
