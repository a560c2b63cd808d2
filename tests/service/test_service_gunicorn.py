"""Real Gunicorn processes on loopback, started with service/gunicorn.conf.py."""
import http.client
import json
import subprocess
import sys
import threading
import time

import pytest

from conftest import GUNICORN_COMMAND, REPO, free_port, http_get

pytestmark = pytest.mark.integration


def test_the_client_shows_the_servers_hello_and_the_request_id_travels(start_service):
    server = start_service("server")
    client = start_service("client", PEER_URLS=f"server={server.url}")
    status, body, headers = http_get(client.url + "/peers", headers={"X-Request-Id": "trace-42"})
    assert status == 200
    assert body["peers"][0]["answer"] == {"service": "server", "message": "Hello from server"}
    assert headers["X-Request-Id"] == "trace-42"
    time.sleep(0.5)
    client_lines = [json.loads(line) for line in client.stdout().splitlines()]
    server_lines = [json.loads(line) for line in server.stdout().splitlines()]
    peers_line = next(line for line in client_lines if line["path"] == "/peers")
    assert peers_line["request_id"] == "trace-42"
    assert peers_line["peers"][0]["peer"] == "server"
    assert any(line["path"] == "/" and line["request_id"] == "trace-42" for line in server_lines)


def test_server_down_then_back_the_client_recovers_without_restart(start_service):
    port = free_port()
    server = start_service("server", PORT=str(port))
    client = start_service("client", PEER_URLS=f"server={server.url}", PEER_TIMEOUT_SECONDS="1")
    assert http_get(client.url + "/peers")[0] == 200

    server.stop()
    started = time.monotonic()
    status, body, _ = http_get(client.url + "/peers")
    assert status == 503
    assert body["peers"][0]["error"]
    assert time.monotonic() - started < 1 + 2.0

    start_service("server", PORT=str(port))
    deadline = time.monotonic() + 10
    while (status := http_get(client.url + "/peers")[0]) != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status == 200


def test_a_hanging_peer_answers_503_within_the_timeout(start_service, hanging_peer):
    client = start_service("client", PEER_URLS=f"stuck={hanging_peer.url}", PEER_TIMEOUT_SECONDS="1")
    started = time.monotonic()
    status, body, _ = http_get(client.url + "/peers")
    elapsed = time.monotonic() - started
    assert status == 503
    assert body["peers"][0]["error"] == "timed out after 1 s"
    assert 0.9 <= elapsed < 1 + 2.0
    # The worker was not stuck meanwhile: liveness answers at once.
    assert http_get(client.url + "/healthz", timeout=2)[0] == 200


def test_sigterm_lets_an_in_flight_request_finish(start_service, peer_server):
    slow = peer_server(name="server", delay=2.0)
    client = start_service("client", PEER_URLS=f"server={slow.url}", PEER_TIMEOUT_SECONDS="5")
    result = {}

    def call():
        result["answer"] = http_get(client.url + "/peers", timeout=15)

    caller = threading.Thread(target=call)
    caller.start()
    assert slow.received.wait(10), "the request never reached the slow peer"
    client.terminate()
    caller.join(20)
    assert result["answer"][0] == 200
    assert result["answer"][1]["peers"][0]["answer"]["service"] == "server"
    assert client.process.wait(timeout=20) == 0


def test_sigterm_does_not_wait_for_idle_keepalive_connections(start_service):
    service = start_service("server")
    idle = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
    idle.request("GET", "/")
    assert idle.getresponse().read()
    started = time.monotonic()
    service.terminate()
    assert service.process.wait(timeout=20) == 0
    # graceful_timeout is 25 s; without the idle-connection drain the stop takes that long.
    assert time.monotonic() - started < 10
    idle.close()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PORT", "http"), ("PEER_URLS", "server.my.demo"), ("PEER_TIMEOUT_SECONDS", "60")],
)
def test_a_bad_environment_value_stops_gunicorn_with_one_line(start_service, variable, value):
    service = start_service("bad", wait=False, **{variable: value})
    assert service.process.wait(timeout=20) != 0
    lines = service.stderr().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"service: invalid environment: {variable}: ")


def test_healthcheck_module_exit_codes(start_service):
    service = start_service("server", HEALTH_CHECK_PATH="/live")
    env = {"PORT": str(service.port), "HEALTH_CHECK_PATH": "/live", "PATH": ""}
    check = [sys.executable, "-m", "service.healthcheck"]
    assert subprocess.run(check, cwd=REPO, env=env, timeout=20).returncode == 0
    wrong_path = {**env, "HEALTH_CHECK_PATH": "/healthz"}
    assert subprocess.run(check, cwd=REPO, env=wrong_path, timeout=20,
                          capture_output=True).returncode == 1
    service.stop()
    assert subprocess.run(check, cwd=REPO, env=env, timeout=20,
                          capture_output=True).returncode == 1
