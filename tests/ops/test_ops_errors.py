"""Each operator-facing error is one line with the right exit code. Throttling goes
through a real HTTP proxy in front of moto, so botocore's own retry configuration is what
is exercised (a Stubber would bypass it)."""
from __future__ import annotations

import http.server
import socket
import socketserver
import threading
import urllib.error
import urllib.request

import pytest
from botocore.stub import Stubber

import generator.ops.aws as aws_module

THROTTLED = (b'<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
             b"<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded"
             b"</Message></Error><RequestId>1</RequestId></ErrorResponse>")


def one_line_error(err: str, message: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err


def test_missing_credentials(project, run, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    code, _, err = run(project.cli("status"))

    assert code == 2
    one_line_error(err, "no AWS credentials found: pass --profile, set AWS_PROFILE")


def test_missing_region(project, run, monkeypatch):
    monkeypatch.delenv("AWS_REGION")

    code, _, err = run(project.cli("verify"))

    assert code == 2
    one_line_error(err, "no AWS region: pass --region, set AWS_REGION")


def test_the_region_flag_is_enough(project, run, monkeypatch):
    monkeypatch.delenv("AWS_REGION")

    code, out, _ = run(project.cli("status", "--region", "eu-west-1"))

    assert code == 0 and "shop in eu-west-1" in out


def test_unknown_profile(project, run):
    code, _, err = run(project.cli("status", "--profile", "nosuch"))

    assert code == 2
    one_line_error(err, "The config profile (nosuch) could not be found")


@pytest.mark.parametrize("variable,value,message", [
    ("AWS_MAX_ATTEMPTS", "abc", "environment: AWS_MAX_ATTEMPTS='abc' is not a positive integer"),
    ("AWS_ENDPOINT_URL", "localhost:4566", "environment: AWS_ENDPOINT_URL='localhost:4566' is not"),
])
def test_bad_aws_environment_values(project, run, monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)

    code, _, err = run(project.cli("status"))

    assert code == 2
    one_line_error(err, message)


def test_access_denied(project, run, monkeypatch):
    real_client = aws_module.Aws.client

    def client(self, service):
        made = real_client(self, service)
        stub = Stubber(made)
        stub.add_client_error("describe_stacks", "AccessDenied",
                              "User: arn:aws:iam::123456789012:user/dev is not authorized to "
                              "perform: cloudformation:DescribeStacks", 403)
        stub.activate()
        return made

    monkeypatch.setattr(aws_module.Aws, "client", client)

    code, _, err = run(project.cli("status"))

    assert code == 2
    one_line_error(err, "access denied: DescribeStacks: User: arn:aws:iam::123456789012:user/dev "
                        "is not authorized to perform: cloudformation:DescribeStacks (check the "
                        "role or profile's permissions)")


class ThrottlingProxy(http.server.ThreadingHTTPServer):
    """Answers the first `throttle` requests with CloudFormation's Throttling error and
    forwards the rest to moto."""

    def __init__(self, target: str, throttle: int):
        self.target, self.throttle, self.seen = target, throttle, 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Forward)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.seen += 1
            throttled = self.server.seen <= self.server.throttle
        if throttled:
            self._answer(400, {"Content-Type": "text/xml"}, THROTTLED)
            return
        request = urllib.request.Request(self.server.target + self.path, data=body,
                                         headers=dict(self.headers), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                self._answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:  # moto's 4xx answers, passed on as they are
            self._answer(error.code, dict(error.headers), error.read())

    def _answer(self, status: int, headers: dict, body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding",
                                   "date", "server"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def throttling_proxy(moto):
    proxies = []

    def start(throttle: int) -> ThrottlingProxy:
        proxy = ThrottlingProxy(moto, throttle)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.shutdown()
        proxy.server_close()


def test_throttling_is_retried_by_botocore(project, run, throttling_proxy):
    proxy = throttling_proxy(throttle=2)

    code, out, err = run(project.cli("status", "--endpoint-url", proxy.url, "--max-attempts", "3"))

    assert (code, err) == (0, "")
    assert "cluster stack shop-cluster does not exist" in out
    assert proxy.seen > 2  # the two throttled attempts, then the calls that went through


def test_throttling_that_outlasts_the_retries_is_one_line(project, run, throttling_proxy):
    proxy = throttling_proxy(throttle=1000)

    code, _, err = run(project.cli("status", "--endpoint-url", proxy.url, "--max-attempts", "2"))

    assert code == 1
    one_line_error(err, "AWS is throttling DescribeStacks (still throttled after 2 attempts "
                        "with backoff); wait a minute and run again, or raise --max-attempts")
    assert proxy.seen == 2


# --- connections that fail after botocore's retries (issue 14, finding 13) ---------------
# On main each of these ended in a traceback (explain() knew only EndpointConnectionError)
# and an expired token read "access denied".

class _Loopback(socketserver.ThreadingTCPServer):
    """A loopback TCP server whose handler misbehaves; `connections` counts attempts."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler):
        self.connections = 0
        self.release = threading.Event()  # lets a silent handler go at teardown
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ClosesAfterReading(socketserver.BaseRequestHandler):
    def handle(self):
        self.server.connections += 1
        self.request.recv(65536)
        self.request.close()  # no answer at all: the peer sees the connection closed


class _NeverAnswers(socketserver.BaseRequestHandler):
    def handle(self):
        self.server.connections += 1
        self.request.recv(65536)
        self.server.release.wait(timeout=20)  # bounded, whatever the client does


@pytest.fixture
def loopback():
    servers = []

    def start(handler) -> _Loopback:
        server = _Loopback(handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()


def test_a_connection_closed_after_the_retries_is_one_line(project, run, loopback):
    server = loopback(_ClosesAfterReading)

    code, _, err = run(project.deploy_argv("--endpoint-url", server.url, "--max-attempts", "2"))

    assert code == 1
    one_line_error(err, "lost the connection to AWS: ")
    assert "ConnectionClosedError, after retries" in err
    assert "check with `python -m generator status`, then run the same command again" in err
    assert server.connections == 2  # botocore retried it, as --max-attempts says


def test_a_read_timeout_after_the_retries_is_one_line(project, run, loopback, monkeypatch):
    monkeypatch.setattr(aws_module, "READ_TIMEOUT_SECONDS", 0.5)
    server = loopback(_NeverAnswers)

    code, _, err = run(project.cli("status", "--endpoint-url", server.url,
                                   "--max-attempts", "2"))

    assert code == 1
    one_line_error(err, "lost the connection to AWS: Read timeout on endpoint URL")
    assert "ReadTimeoutError, after retries" in err
    assert server.connections == 2


def test_an_endpoint_nobody_listens_on_is_one_line(project, run):
    with socket.socket() as probe:  # a port that was free a moment ago: refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    code, _, err = run(project.cli("status", "--endpoint-url", f"http://127.0.0.1:{port}",
                                   "--max-attempts", "2"))

    assert code == 1
    one_line_error(err, "cannot reach AWS: Could not connect to the endpoint URL")
    assert "check the network, any proxy (HTTPS_PROXY), --region and --endpoint-url" in err


@pytest.mark.parametrize("code, clock", [("ExpiredToken", False),
                                         ("ExpiredTokenException", False),
                                         ("RequestExpired", True)])
def test_expired_credentials_are_not_called_access_denied(project, run, monkeypatch, code,
                                                          clock):
    real_client = aws_module.Aws.client

    def client(self, service):
        made = real_client(self, service)
        stub = Stubber(made)
        stub.add_client_error("describe_stacks", code,
                              "The security token included in the request is expired", 403)
        stub.activate()
        return made

    monkeypatch.setattr(aws_module.Aws, "client", client)

    exit_code, _, err = run(project.deploy_argv())

    assert exit_code == 2
    one_line_error(err, f"AWS credentials expired: DescribeStacks: {code}: The security "
                        "token included in the request is expired; refresh them (`aws sso "
                        "login`, or new temporary credentials for the role)")
    assert "access denied" not in err
    assert ("clock" in err) == clock


class _DropsAfter(_Forward):
    """Forwards the first `allow` requests to moto, then closes every connection."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        with self.server.lock:
            self.server.seen += 1
            dropped = self.server.seen > self.server.allow
        if dropped:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.close_connection = True
            self.connection.close()
            return
        super().do_POST()


def test_a_connection_lost_in_the_middle_of_a_deploy_is_one_line_and_a_rerun_recovers(
        project, run, moto, boto):
    proxy = ThrottlingProxy(moto, throttle=0)
    proxy.RequestHandlerClass = _DropsAfter
    proxy.allow = 40  # past the preflight's reads and into the stack changes
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        code, out, err = run(project.first_deploy_argv("--endpoint-url", proxy.url,
                                                       "--max-attempts", "2"))
    finally:
        proxy.shutdown()
        proxy.server_close()

    assert code == 1, out + err
    one_line_error(err, "lost the connection to AWS: ")
    assert "Traceback" not in out + err
    assert boto("cloudformation").describe_stacks()["Stacks"]  # it had begun

    code, out, err = run(project.first_deploy_argv())

    assert (code, err) == (0, ""), out


@pytest.mark.parametrize("status, meta, message", [
    (400, {"RetryQuotaReached": True, "RetryAttempts": 2},
     "DescribeStacks failed: Throttling: Rate exceeded (after 3 attempt(s): botocore's retry "
     "quota is spent, too many calls failed in a row); wait a few minutes and run again"),
    (500, {"RetryAttempts": 7},
     "AWS failed DescribeStacks: InternalFailure: Rate exceeded (after 8 attempt(s)); run "
     "again in a few minutes"),
])
def test_errors_that_outlast_the_retries_say_what_to_do(project, run, monkeypatch, status,
                                                        meta, message):
    """botocore's standard mode stops at its retry quota whatever --max-attempts says, so
    "raise --max-attempts" would be wrong advice there; a 5xx after the retries is AWS's."""
    real_client = aws_module.Aws.client
    code_name = "Throttling" if status == 400 else "InternalFailure"

    def client(self, service):
        made = real_client(self, service)
        stub = Stubber(made)
        stub.add_client_error("describe_stacks", code_name, "Rate exceeded", status,
                              response_meta={"HTTPStatusCode": status, **meta})
        stub.activate()
        return made

    monkeypatch.setattr(aws_module.Aws, "client", client)

    code, _, err = run(project.cli("status"))

    assert code == 1
    one_line_error(err, message)
    assert "--max-attempts" not in err
