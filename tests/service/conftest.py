"""Fixtures for the service tests: the app under Flask's test client, real peers on
loopback, and real Gunicorn processes started with the project's own config."""
from __future__ import annotations

import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from service.app import create_app
from service.config import Peer, Settings

REPO = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
GUNICORN_COMMAND = [GUNICORN, "--config", "service/gunicorn.conf.py", "service.app:create_app()"]
# Generous: a loaded 2-core CI machine can take a few seconds to boot Gunicorn and gevent.
START_TIMEOUT_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_get(url: str, timeout: float = 10, headers: dict | None = None):
    """(status, parsed JSON body, headers) for a GET; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


class ServiceProcess:
    """One Gunicorn master (and its workers) running the service on a loopback port."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str, extra_args=()):
        self.port = int(env["PORT"]) if env["PORT"].isdigit() else 0
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = log_dir / f"{name}-{self.port}.out"
        self.stderr_path = log_dir / f"{name}-{self.port}.err"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        full_env.pop("GUNICORN_CMD_ARGS", None)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [*GUNICORN_COMMAND, *extra_args], cwd=REPO, env=full_env, stdout=out, stderr=err,
                start_new_session=True,
            )

    def wait_ready(self) -> "ServiceProcess":
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited {self.process.returncode}: {self.stderr()}")
            if self.workers_ready():
                try:
                    with urllib.request.urlopen(self.url + "/", timeout=2):
                        return self
                except urllib.error.HTTPError:
                    return self
                except OSError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"gunicorn on {self.port} not ready: {self.stderr()}")

    def workers_ready(self) -> bool:
        # Every forked worker must have booted: a SIGTERM sent earlier can be lost by a
        # worker still starting (see post_worker_init in gunicorn.conf.py).
        log = self.stderr()
        booted = log.count("Booting worker")
        return booted > 0 and log.count("Worker ready") >= booted

    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        self.terminate()
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _service_starter(log_dir: Path, started: list[ServiceProcess]):
    def start(name: str = "svc", wait: bool = True, extra_args=(), **env: str) -> ServiceProcess:
        env.setdefault("PORT", str(free_port()))
        env.setdefault("SERVICE_NAME", name)
        service = ServiceProcess(env, log_dir, name, extra_args)
        started.append(service)
        return service.wait_ready() if wait else service

    return start


@pytest.fixture
def start_service(tmp_path):
    """start_service(name, PORT=..., PEER_URLS=...) -> a ready ServiceProcess; all stopped after.

    extra_args=[...] go after the container's command line (e.g. another worker class)."""
    started: list[ServiceProcess] = []
    yield _service_starter(tmp_path, started)
    for service in started:
        service.stop()


@pytest.fixture(scope="module")
def launch_services(tmp_path_factory):
    """Like start_service (wait=False), for services a whole test module shares."""
    started: list[ServiceProcess] = []
    start = _service_starter(tmp_path_factory.mktemp("services"), started)
    yield lambda name, **kwargs: start(name, wait=False, **kwargs)
    for service in started:
        service.stop()


class PeerServer:
    """A real HTTP peer on loopback, run in a thread: answers like the service after `delay`."""

    def __init__(self, name: str = "fake-peer", delay: float = 0.0, status: int = 200):
        self.name, self.delay, self.status = name, delay, status
        self.request_ids: list[str] = []
        self.received = threading.Event()
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                peer.request_ids.append(self.headers.get("X-Request-Id", ""))
                peer.received.set()
                time.sleep(peer.delay)
                body = json.dumps({"service": peer.name, "message": f"Hello from {peer.name}"})
                self.send_response(peer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RawPeer:
    """Accepts connections; for each, `script(connection, server)` does the talking.

    `server.read_request(connection)` reads one request head (None when the client closed).
    """

    def __init__(self, script):
        self.script = script
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.accepted = 0
        self.requests: list[bytes] = []
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            self.connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection):
        try:
            self.script(connection, self)
        except OSError:
            pass

    def read_request(self, connection) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                return None
            data += chunk
        self.requests.append(data)
        return data

    def close(self):
        self.listener.close()
        for connection in self.connections:
            try:
                connection.close()
            except OSError:
                pass


@pytest.fixture
def raw_peer():
    peers: list[RawPeer] = []

    def start(script) -> RawPeer:
        peers.append(RawPeer(script))
        return peers[-1]

    yield start
    for peer in peers:
        peer.close()


@pytest.fixture
def peer_server():
    servers: list[PeerServer] = []

    def start(**kwargs) -> PeerServer:
        servers.append(PeerServer(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def hanging_peer(raw_peer):
    """Accepts connections and never answers: the peer that hangs."""
    return raw_peer(lambda connection, server: None)


@pytest.fixture
def refused_url():
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def log_stream():
    return io.StringIO()


@pytest.fixture
def make_client(log_stream):
    """make_client(peers=[...], **settings) -> a Flask test client on a fresh app."""

    def make(peers: list[tuple[str, str]] = (), **overrides):
        settings = Settings(
            service_name=overrides.pop("service_name", "client"),
            peers=tuple(Peer(name, url) for name, url in peers),
            **overrides,
        )
        app = create_app(settings, log_stream=log_stream)
        app.testing = True
        return app.test_client()

    return make


@pytest.fixture
def log_lines(log_stream):
    """log_lines() -> the access log lines written so far, parsed."""
    return lambda: [json.loads(line) for line in log_stream.getvalue().splitlines()]
