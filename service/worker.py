"""Gunicorn worker: gevent's pywsgi server with an idle keep-alive bound, a prompt drain on
SIGTERM, request framing at least as strict as Gunicorn's own parser, and a leaner
per-request path.

Framing (RFC 9112 3, 5, 6): the request line and headers are checked here so that no request
whose end two readers could disagree on is served: Content-Length with Transfer-Encoding,
two Content-Lengths, a Content-Length that is not 1*DIGIT, a coding other than chunked, bare
LF, obs-fold, control characters, HTTP/0.9 request lines. pywsgi's own chunk reader reads
chunked bodies. tests/service/test_service_framing.py sends a corpus of such requests to this
worker and to Gunicorn's sync worker (the reference) and fails when ours serves what the
reference refuses.

The lean parts override pywsgi; each is kept because `python -m benchmarks.service_bench
overrides` measures a saving (figures at each override: CPU per request in one process, min
of repeats, 2-core machine shared with other test runs). Both the caller and the callee of
the benchmark's hop run this worker, so a saving counts twice per hop. End to end, dropping
all of them cost +25% CPU per hop (322 -> 404 us, caller + callee; +48% in an earlier run
that also dropped the fairness yield; the issue measured +45 to +55%).
- request headers are parsed here (RequestHeaders) instead of by http.client's
  email-package parser;
- a small response goes out in one send (pywsgi sends the head and the body separately:
  two segments, and often two wake-ups of the reader), and a send is tried directly
  before gevent's sendall (which makes a getsockopt call every time);
- the Date header is formatted once a second;
- Gunicorn's access-log hook is skipped when its access log is off (the app writes its
  own JSON line), instead of building the log record and throwing it away.

Some of these override pywsgi's internal methods (MessageClass, _write_with_headers,
_sendall), so gevent is pinned (service/requirements.txt; setup.cfg allows 26.x only),
tests/service/test_service_gevent_upgrade.py fails when gevent changes any pywsgi code they
override or rely on, and service/UPGRADING.md says what to do then.
"""
from __future__ import annotations

import re
import socket
import time
from email.utils import formatdate

import gevent
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler

# How often a draining worker looks again for connections that went idle.
DRAIN_SWEEP_SECONDS = 0.2
# The limits http.client.parse_headers applies, which pywsgi used.
MAX_HEADER_LINE = 65536
MAX_HEADERS = 100
# A response whose body is at most this long goes out in the same send as its head.
COALESCE_BODY_BYTES = 64 * 1024


class BadRequest(ValueError):
    """pywsgi answers a ValueError from read_request with 400 Bad Request and closes."""

    @property
    def formatted_message(self) -> str:
        return self.args[0]


# One header line, checked in one match (RFC 9112 5, RFC 9110 5.5): a token name right
# before the colon (no whitespace: "Content-Length : 5" is refused), optional whitespace,
# a value without control characters but HTAB (no NUL, bare CR or LF), CRLF.
_FIELD_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*)\r\n")


def _why_malformed(raw: bytes) -> str:
    if len(raw) > MAX_HEADER_LINE:
        return "header line too long"
    if raw[:1] in (b" ", b"\t"):
        return "obsolete line folding"  # RFC 9112 5.2 lets a server refuse it; Gunicorn does
    if raw[-2:] != b"\r\n":
        # A bare LF (RFC 9112 2.2 lets a server refuse it; Gunicorn does), or the client
        # went away in the middle of the head.
        return "header line not ended by CRLF"
    return f"malformed header line {raw[:80]!r}"


# RFC 9112 3: method SP request-target SP HTTP-version CRLF, single spaces, HTTP/1.0 or 1.1
# (what pywsgi would also read as HTTP/0.9 or split on any whitespace). The method rules
# are Gunicorn's: 3 to 20 token characters without lowercase letters or "#".
_REQUEST_LINE = re.compile(
    r"[!$%&'*+\-.^_`|~0-9A-Z]{3,20} (?:/[\x21-\x7e]*|[a-z][a-z0-9+.-]*://[\x21-\x7e]+)"
    r" HTTP/1\.[01]\r\n"
)
# Fields that must appear at most once (RFC 9110 5.3; Gunicorn refuses a second one).
_SINGLETONS = frozenset(("host", "content-type", "content-length"))


class RequestHeaders:
    """The parsed request headers, with the interface pywsgi and Gunicorn use.

    Names keep their case and order for the WSGI environ; lookups are case-insensitive and
    return the first value, as http.client's HTTPMessage did.

    Framing (RFC 9112 6.1, 6.3) is decided here, at least as strictly as Gunicorn's own
    parser (tests/service/test_service_framing.py sends the same bytes to both): a request
    whose body length two readers could disagree on is refused, never served. pywsgi then
    reads the body by the one framing header that is left.
    """

    __slots__ = ("_fields", "_first")
    status = ""  # pywsgi answers 400 when this is set; errors raise BadRequest instead

    def __init__(self, fields: list[tuple[str, str]]):
        self._fields = fields
        first: dict[str, str] = {}
        for name, value in fields:
            first.setdefault(name.lower(), value)
        self._first = first

    @classmethod
    def read(cls, rfile, http10: bool = False) -> "RequestHeaders":
        fields: list[tuple[str, str]] = []
        first: dict[str, str] = {}
        singletons: set[str] = set()
        transfer_encoding: str | None = None
        while True:
            raw = rfile.readline(MAX_HEADER_LINE + 1)
            if raw == b"\r\n":
                break
            match = _FIELD_LINE.fullmatch(raw)
            if match is None:
                raise BadRequest(_why_malformed(raw))
            if len(fields) >= MAX_HEADERS:
                raise BadRequest(f"more than {MAX_HEADERS} headers")
            name = match[1].decode("ascii")
            value = match[2].rstrip(b" \t").decode("latin-1")
            lowered = name.lower()
            if lowered in _SINGLETONS:
                if lowered in singletons:
                    raise BadRequest(f"more than one {name} header")
                singletons.add(lowered)
            elif lowered == "transfer-encoding":
                transfer_encoding = (
                    value if transfer_encoding is None else f"{transfer_encoding},{value}"
                )
            elif lowered == "expect" and value.lower() != "100-continue":
                raise BadRequest("unsupported Expect")  # Gunicorn answers 417
            if "_" in name:
                # Dropped, like Gunicorn's header_map="drop": in the environ X_Real_Ip and
                # X-Real-Ip are the same key, so one could impersonate the other.
                continue
            fields.append((name, value))
            first.setdefault(lowered, value)
        content_length = first.get("content-length")
        if content_length is not None and not (content_length.isascii() and content_length.isdigit()):
            # int() would also take "+5", "0_5", " 5" or "٥".
            raise BadRequest("invalid Content-Length")
        if transfer_encoding is not None:
            # Only chunked is supported, once and alone: pywsgi reads no other coding, and
            # a body whose last coding is not chunked has no length a proxy agrees on.
            if transfer_encoding.strip(" \t").lower() != "chunked":
                raise BadRequest("unsupported Transfer-Encoding")
            if content_length is not None:
                # RFC 9112 6.1: a request with both is a smuggling attempt or a broken proxy.
                raise BadRequest("both Content-Length and Transfer-Encoding")
            if http10:
                raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
        headers = cls.__new__(cls)
        headers._fields, headers._first = fields, first
        return headers

    def get(self, name: str, default=None):
        return self._first.get(name.lower(), default)

    getheader = get

    def __getitem__(self, name: str):
        return self._first.get(name.lower())

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._first

    def __delitem__(self, name: str) -> None:
        # Like email.message.Message: removes every occurrence, never raises.
        lowered = name.lower()
        self.__init__([(key, value) for key, value in self._fields if key.lower() != lowered])

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    @property
    def typeheader(self):
        return self._first.get("content-type")

    @property
    def headers(self):
        # What pywsgi's environ builder iterates: one "Name: value\r\n" per field.
        for name, value in self._fields:
            yield f"{name}: {value}\r\n"


_date_second = -1
_date_value = b""


def http_date() -> bytes:
    """The Date header's value, formatted once per second."""
    global _date_second, _date_value
    now = time.time()
    second = int(now)
    if second != _date_second:
        _date_value = formatdate(second, usegmt=True).encode("latin-1")
        _date_second = second
    return _date_value


class ServiceHandler(PyWSGIHandler):
    """One keep-alive connection. `worker` is bound per worker process in init_process."""

    worker: "ServiceWorker"

    def read_requestline(self):
        # pywsgi waits for the next request forever; Gunicorn's keepalive bounds it,
        # which also stops a client that opens connections and never speaks.
        self.socket.settimeout(self.worker.cfg.keepalive)
        self.worker.idle_handlers.add(self)
        try:
            line = super().read_requestline()
            if line == "\r\n":
                # RFC 9112 2.2: ignore at least one empty line before a request line
                # (some clients send one after a POST body); Gunicorn ignores one.
                line = super().read_requestline()
            return line
        finally:
            self.worker.idle_handlers.discard(self)

    def read_request(self, raw_requestline):
        # pywsgi splits the request line on any whitespace and takes two words as HTTP/0.9.
        if not _REQUEST_LINE.fullmatch(raw_requestline):
            raise BadRequest(f"malformed request line {raw_requestline[:80]!r}")
        return super().read_request(raw_requestline)

    # Measured (benchmarks.service_bench overrides): 17.5 us per request with pywsgi's
    # http.client parser, 6.4 us here with the framing checks in the same run (alone, A/B
    # in one process: 2.1 us before the framing checks, 3.1 us with them).
    def MessageClass(self, rfile, *args):  # noqa: N802 (pywsgi's name)
        return RequestHeaders.read(rfile, http10=self.request_version == "HTTP/1.0")

    # Measured: 1.8 us per response formatting Date each time, 0.11 us from the cache.
    def finalize_headers(self):
        if self.provided_date is None:
            self.response_headers.append((b"Date", http_date()))
            self.provided_date = True
        super().finalize_headers()

    # Measured with _sendall below: 14.3 us per small response written and read with
    # pywsgi's two sendalls, 6.3 us with one send (and the reader wakes once, not twice).
    def _write_with_headers(self, data):
        if len(data) > COALESCE_BODY_BYTES:
            return super()._write_with_headers(data)
        self.headers_sent = True
        self.finalize_headers()
        towrite = self._head()
        if self.response_use_chunked:  # no length known: the body follows in chunks
            self._sendall(towrite)
            self._write(data)
            return
        towrite += data
        self._sendall(towrite)

    def _head(self) -> bytearray:
        towrite = bytearray(b"HTTP/1.1 ")
        towrite += self.status
        towrite += b"\r\n"
        for header, value in self.response_headers:
            towrite += header
            towrite += b": "
            towrite += value
            towrite += b"\r\n"
        towrite += b"\r\n"
        return towrite

    def _sendall(self, data):
        # One send usually takes a whole small response; gevent's sendall is the fallback.
        try:
            sent = self.socket.send(data)
            if sent < len(data):
                self.socket.sendall(memoryview(data)[sent:])
        except OSError as ex:
            self.status = "socket error: %s" % ex
            if self.code > 0:
                self.code = -self.code
            raise
        self.response_length += len(data)

    # Measured: 1.56 us per request in Gunicorn's hook with its access log off, 0.06 us here.
    def log_request(self):
        if self.server.log.access_log_enabled:
            super().log_request()

    def handle_one_response(self):
        super().handle_one_response()
        # A keep-alive client that sends its next request at once would otherwise keep this
        # greenlet running (its read never blocks) while other connections wait: measured
        # here, p50 0.5 ms but p99 290 ms. Yielding after each response makes the worker
        # round-robin its connections: p99 12 ms at the same throughput.
        gevent.sleep(0)
        if not self.worker.alive:
            # Draining: answer this request, then let the client reconnect elsewhere.
            self.close_connection = True


class ServiceWorker(GeventPyWSGIWorker):
    handler_class = ServiceHandler  # the benchmark swaps in variants to measure overrides

    def init_process(self):
        self.idle_handlers: set[ServiceHandler] = set()
        self.wsgi_handler = type("BoundServiceHandler", (self.handler_class,), {"worker": self})
        super().init_process()

    def handle_exit(self, sig, frame):
        super().handle_exit(sig, frame)
        # Idle keep-alive connections would otherwise hold the worker until
        # graceful_timeout; in-flight requests still run to completion.
        gevent.spawn(self._close_idle_connections)

    def _close_idle_connections(self):
        while True:
            for handler in list(self.idle_handlers):
                try:
                    handler.socket.shutdown(socket.SHUT_RDWR)
                except (OSError, AttributeError):
                    pass
            gevent.sleep(DRAIN_SWEEP_SECONDS)
