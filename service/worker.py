"""Gunicorn worker: gevent's pywsgi server with an idle keep-alive bound, a prompt drain on
SIGTERM, and a leaner per-request path.

The lean parts, each measured on the benchmark's hop (both the caller and the callee run
this worker, so a saving counts twice there):
- request headers are parsed here (RequestHeaders) instead of by http.client's
  email-package parser, which took 7-11% of a worker's profile samples under load;
- a small response goes out in one send (pywsgi sends the head and the body separately:
  two segments, and often two wake-ups of the reader), and a send is tried directly
  before gevent's sendall (which makes a getsockopt call every time);
- the Date header is formatted once a second;
- Gunicorn's access-log hook is skipped when its access log is off (the app writes its
  own JSON line), instead of building the log record and throwing it away.

Some of these override pywsgi's internal methods (MessageClass, _write_with_headers,
_sendall), so gevent is pinned (service/requirements.txt; setup.cfg allows 26.x only),
and tests/service exercises this worker through real Gunicorn processes.
"""
from __future__ import annotations

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


class RequestHeaders:
    """The parsed request headers, with the interface pywsgi and Gunicorn use.

    Names keep their case and order for the WSGI environ; lookups are case-insensitive and
    return the first value, as http.client's HTTPMessage did.
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
    def read(cls, rfile) -> "RequestHeaders":
        fields: list[tuple[str, str]] = []
        while True:
            raw = rfile.readline(MAX_HEADER_LINE + 1)
            if len(raw) > MAX_HEADER_LINE:
                raise BadRequest("header line too long")
            if raw in (b"\r\n", b"\n", b""):
                return cls(fields)
            line = raw.decode("latin-1")
            if line[0] in " \t":
                # obs-fold (RFC 9112 5.2): a continuation of the previous value, as a space.
                if not fields:
                    raise BadRequest("header continuation without a header")
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {line.strip()}")
                continue
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip() or " " in name or "\t" in name:
                raise BadRequest(f"malformed header line {line[:80]!r}")
            if len(fields) >= MAX_HEADERS:
                raise BadRequest(f"more than {MAX_HEADERS} headers")
            fields.append((name, value.lstrip(" \t").rstrip("\r\n")))

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
            return super().read_requestline()
        finally:
            self.worker.idle_handlers.discard(self)

    def MessageClass(self, rfile, *args):  # noqa: N802 (pywsgi's name)
        return RequestHeaders.read(rfile)

    def finalize_headers(self):
        if self.provided_date is None:
            self.response_headers.append((b"Date", http_date()))
            self.provided_date = True
        super().finalize_headers()

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
    def init_process(self):
        self.idle_handlers: set[ServiceHandler] = set()
        self.wsgi_handler = type("BoundServiceHandler", (ServiceHandler,), {"worker": self})
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
