"""Calls to the peer services over pooled keep-alive connections, each within a deadline.

The client is a small HTTP/1.1 client written for this one job (`GET <peer>/`), not
urllib3: on the benchmark's one-peer hop urllib3's per-request machinery (pool and
connection objects, header dicts, response wrappers, retries, timeouts objects) cost
more CPU than the rest of the caller's request. What it does:

- one `sendall` of the request line and headers (precomputed per peer but for the
  request id); TCP_NODELAY;
- reads the head up to the blank line (bounded), then the body by Content-Length,
  chunked transfer-encoding, or until the peer closes (HTTP/1.0 servers such as
  `http.server`); a body longer than MAX_ANSWER_BYTES is cut there and the connection
  closed; framing follows RFC 9112: an answer with both Content-Length and
  Transfer-Encoding, two different Content-Lengths or a chunk size that is not 1*HEXDIG
  is an error (connection dropped), an obs-fold is read as a space;
- keeps the connection for the next call only when the answer was complete and
  length-delimited and neither side said `Connection: close` (HTTP/1.0 only with
  `Connection: keep-alive`);
- a pooled connection that the peer (or its Envoy) closed while idle fails before
  a byte of an answer arrives; the call is then retried once on a fresh connection;
- every call has one deadline, `timeout_seconds` from its start: without gevent each
  connect, send and receive waits only for what is left of it, so a peer that hangs or trickles
  bytes yields its entry on time; under gevent one gevent.Timeout bounds the whole
  call instead (the name lookup too), so the waits need no timers of their own.
"""
from __future__ import annotations

import concurrent.futures
import re
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from gevent import Timeout as _GeventTimeout
from gevent import monkey as _gevent_monkey

from service.config import Peer

# A peer's answer is shown to a person; anything longer is a bug on its side.
MAX_ANSWER_BYTES = 16 * 1024
# A status line and headers longer than this are not a peer answering `/`.
MAX_HEAD_BYTES = 16 * 1024
# Keep as many idle connections per peer as a worker serves requests at once,
# so a steady load never reconnects.
POOL_CONNECTIONS_PER_PEER = 64
# The fan-out's wait gets this on top of the per-call deadline (a backstop: every
# call already ends by its own deadline). The README and tests quote it.
DEADLINE_MARGIN_SECONDS = 0.25
_RECV_BYTES = 32 * 1024
_HEXDIGITS = b"0123456789abcdefABCDEF"
_OBS_FOLD = re.compile(rb"[ \t]*\r\n[ \t]+")
_USER_AGENT = b"ecs-service-connect-kit-peers/1"


class PeerProtocolError(Exception):
    """The peer answered something that is not a usable HTTP/1.x response."""


class _StaleConnection(Exception):
    """A reused connection failed before any byte of an answer: retry on a fresh one."""


class _DeadlineExceeded(Exception):
    """Raised by the per-call gevent.Timeout."""


@dataclass(frozen=True)
class PeerResult:
    peer: Peer
    status: int | None
    latency_ms: float
    answer: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.peer.name,
            "url": self.peer.url,
            "status": self.status,
            "latency_ms": self.latency_ms,
        }
        if self.error is not None:
            entry["error"] = self.error
        else:
            entry["answer"] = self.answer
        return entry


class _Target:
    """One peer's address, its request bytes and its idle connections (most recent last)."""

    __slots__ = ("host", "port", "tls_hostname", "request_head", "idle")

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls_hostname = parts.hostname if parts.scheme == "https" else None
        path = (parts.path or "").rstrip("/") + "/"
        self.request_head = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode("ascii")
            + b"User-Agent: " + _USER_AGENT + b"\r\nAccept: application/json\r\nX-Request-Id: "
        )
        self.idle: list[socket.socket] = []


class PeerClient:
    """Calls `GET <peer>/` on each peer; one instance per worker process."""

    def __init__(self, peers: tuple[Peer, ...], timeout_seconds: float):
        self.peers = peers
        self.timeout_seconds = timeout_seconds
        self._targets = {peer.url: _Target(peer.url) for peer in peers}
        self._ssl_context: ssl.SSLContext | None = None
        # Created lazily: a service with one peer calls it on the request's own thread.
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    def call_all(self, request_id: str) -> list[PeerResult]:
        if not self.peers:
            return []
        if len(self.peers) == 1:
            return [self.call(self.peers[0], request_id)]
        executor = self._executor_for_fan_out()
        started = time.perf_counter()
        futures = [executor.submit(self.call, peer, request_id) for peer in self.peers]
        done, _ = concurrent.futures.wait(
            futures, timeout=self.timeout_seconds + DEADLINE_MARGIN_SECONDS
        )
        results = []
        for peer, future in zip(self.peers, futures):
            if future in done:
                results.append(future.result())
            else:
                future.cancel()
                elapsed = (time.perf_counter() - started) * 1000
                results.append(
                    PeerResult(peer, None, round(elapsed, 1), error=self._timed_out())
                )
        return results

    def call(self, peer: Peer, request_id: str) -> PeerResult:
        started = time.perf_counter()
        deadline = started + self.timeout_seconds
        if "\r" in request_id or "\n" in request_id:
            raise ValueError("a request id must not contain line breaks")
        request = self._targets[peer.url].request_head + request_id.encode("ascii") + b"\r\n\r\n"
        timer = None
        waits_until = deadline
        if _gevent_monkey.is_module_patched("socket"):
            # Under gevent one timer bounds the whole call, the name lookup included, and
            # the socket waits need no timers of their own.
            timer = _GeventTimeout.start_new(self.timeout_seconds, _DeadlineExceeded)
            waits_until = None
        try:
            status, content_type, body = self._exchange(peer, request, deadline, waits_until)
        except (_DeadlineExceeded, TimeoutError):
            return PeerResult(peer, None, _elapsed_ms(started), error=self._timed_out())
        except ConnectionRefusedError:
            return PeerResult(peer, None, _elapsed_ms(started), error="connection refused")
        except (PeerProtocolError, OSError) as exc:
            return PeerResult(peer, None, _elapsed_ms(started), error=_describe(exc))
        finally:
            if timer is not None:
                timer.close()
        return PeerResult(peer, status, _elapsed_ms(started), answer=_decode(body, content_type))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        for target in self._targets.values():
            while target.idle:
                target.idle.pop().close()

    def _exchange(
        self, peer: Peer, request: bytes, deadline: float, waits_until: float | None
    ) -> tuple[int, bytes, bytes]:
        """`waits_until`: the deadline for each socket wait, or None when a timer bounds them."""
        target = self._targets[peer.url]
        try:
            sock = target.idle.pop()
        except IndexError:
            sock = None
        if sock is not None:
            try:
                return self._round_trip(target, sock, request, waits_until, reused=True)
            except _StaleConnection:
                pass  # closed by _round_trip; one fresh connection settles it
        sock = self._connect(target, deadline)
        return self._round_trip(target, sock, request, waits_until, reused=False)

    def _connect(self, target: _Target, deadline: float) -> socket.socket:
        sock = socket.create_connection((target.host, target.port), _remaining(deadline))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if target.tls_hostname is not None:
                if self._ssl_context is None:
                    self._ssl_context = ssl.create_default_context()
                sock.settimeout(_remaining(deadline))
                sock = self._ssl_context.wrap_socket(sock, server_hostname=target.tls_hostname)
        except BaseException:
            sock.close()
            raise
        return sock

    def _round_trip(
        self, target: _Target, sock: socket.socket, request: bytes, deadline: float | None,
        reused: bool,
    ) -> tuple[int, bytes, bytes]:
        keep = False
        try:
            sock.settimeout(None if deadline is None else _remaining(deadline))
            try:
                # A request fits the socket buffer: one send, without sendall's overhead.
                sent = sock.send(request)
                if sent < len(request):
                    sock.sendall(request[sent:])
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                if reused:
                    raise _StaleConnection() from None
                raise
            status, content_type, body, keep = _read_response(sock, deadline, reused)
        finally:
            if keep and len(target.idle) < POOL_CONNECTIONS_PER_PEER:
                target.idle.append(sock)
            else:
                sock.close()
        return status, content_type, body

    def _executor_for_fan_out(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=4 * len(self.peers), thread_name_prefix="peer-call"
            )
        return self._executor

    def _timed_out(self) -> str:
        return f"timed out after {self.timeout_seconds:g} s"


def _remaining(deadline: float) -> float:
    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        raise TimeoutError("deadline passed")
    return remaining


def _recv(sock: socket.socket, deadline: float | None) -> bytes:
    if deadline is not None:
        sock.settimeout(_remaining(deadline))
    return sock.recv(_RECV_BYTES)


def _read_response(
    sock: socket.socket, deadline: float | None, reused: bool
) -> tuple[int, bytes, bytes, bool]:
    """(status, content type, body, keep the connection) of one response on `sock`."""
    # The answer usually arrives whole in the first receive.
    try:
        buffer = _recv(sock, deadline)
    except (ConnectionResetError, ConnectionAbortedError):
        if reused:
            raise _StaleConnection() from None
        raise
    if not buffer:
        if reused:
            raise _StaleConnection()
        raise PeerProtocolError("peer closed the connection without answering")
    while True:
        head_end = buffer.find(b"\r\n\r\n")
        while head_end < 0:
            if not buffer.startswith(b"HTTP/"[: len(buffer)]):
                raise PeerProtocolError("not an HTTP response")
            if len(buffer) > MAX_HEAD_BYTES:
                raise PeerProtocolError("response head too large")
            chunk = _recv(sock, deadline)
            if not chunk:
                raise PeerProtocolError("peer closed the connection mid-answer")
            buffer += chunk
            head_end = buffer.find(b"\r\n\r\n")
        if head_end > MAX_HEAD_BYTES:
            raise PeerProtocolError("response head too large")
        head = buffer[:head_end]
        if b"\r\n " in head or b"\r\n\t" in head:
            # obs-fold (RFC 9112 5.2): a user agent replaces each fold with SP before reading
            # the value. A fold right after the status line joins its reason phrase, which
            # consumes the line without processing it, as 2.2 asks.
            head = _OBS_FOLD.sub(b" ", head)
        lines = head.split(b"\r\n")
        buffer = buffer[head_end + 4:]
        status_line = lines[0]
        code = status_line[9:12]
        if (
            not status_line.startswith((b"HTTP/1.1 ", b"HTTP/1.0 "))
            or len(code) != 3
            or not code.isdigit()
            or status_line[12:13] not in (b"", b" ")
        ):
            raise PeerProtocolError("not an HTTP/1.x status line")
        status = int(code)
        if 100 <= status < 200 and status != 101:
            continue  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        break
    http11 = status_line[7] == 49  # b"1"
    content_type = b""
    content_length: int | None = None
    transfer_encoding = False
    chunked = False
    connection_tokens = b""
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise PeerProtocolError("malformed header line")
        name = name.lower()
        if name == b"content-type":
            content_type = value.strip()
        elif name == b"content-length":
            value = value.strip()
            if not value.isdigit() or (content_length is not None and int(value) != content_length):
                raise PeerProtocolError("invalid Content-Length")
            content_length = int(value)
        elif name == b"transfer-encoding":
            codings = [c.strip() for c in value.lower().split(b",") if c.strip()]
            transfer_encoding = True
            chunked = bool(codings) and codings[-1] == b"chunked"
        elif name == b"connection":
            connection_tokens += b"," + value.lower()
    if transfer_encoding and content_length is not None:
        # RFC 9112 6.1: a sender never sends both; the answer may be a smuggling attempt and
        # the connection's framing cannot be trusted, so it is an error and not reused.
        raise PeerProtocolError("both Content-Length and Transfer-Encoding")
    if http11:
        keep = b"close" not in connection_tokens
    else:
        keep = b"keep-alive" in connection_tokens
    if status in (101, 204, 304):
        # No body; a 101 would switch protocols, which a GET / never asked for.
        return status, content_type, b"", keep and status != 101 and not buffer
    if chunked:
        body, buffer, complete = _read_chunked(sock, deadline, buffer)
    elif content_length is not None:
        body, buffer, complete = _read_length(sock, deadline, buffer, content_length)
    else:
        # Delimited by the peer closing the connection (RFC 9112, 6.3).
        body, complete = _read_until_close(sock, deadline, buffer)
        return status, content_type, body, False
    # Bytes after the answer would be an answer to a request nobody sent.
    return status, content_type, body, keep and complete and not buffer


def _read_length(
    sock: socket.socket, deadline: float | None, buffer: bytes, length: int
) -> tuple[bytes, bytes, bool]:
    wanted = min(length, MAX_ANSWER_BYTES + 1)
    if len(buffer) >= length:
        return buffer[:wanted], buffer[length:], True
    parts = [buffer]
    have = len(buffer)
    while have < wanted:
        chunk = _recv(sock, deadline)
        if not chunk:
            raise PeerProtocolError("peer closed the connection mid-answer")
        parts.append(chunk)
        have += len(chunk)
    data = b"".join(parts)
    if length > MAX_ANSWER_BYTES:
        return data[:wanted], b"", False  # cut: the connection is not reusable
    return data[:length], data[length:], True


def _read_chunked(sock: socket.socket, deadline: float | None, buffer: bytes) -> tuple[bytes, bytes, bool]:
    body = bytearray()
    position = 0

    def line() -> bytes:
        nonlocal position
        while True:
            end = buffer.find(b"\r\n", position)
            if end >= 0:
                found = buffer[position:end]
                position = end + 2
                return found
            if len(buffer) - position > 4096:
                raise PeerProtocolError("chunk header too long")
            # At least one byte more than we hold: a line cut between two reads must
            # wait for the rest, not look again at the same bytes forever.
            more(len(buffer) - position + 1)

    def more(at_least: int) -> None:
        nonlocal buffer, position
        buffer = buffer[position:]
        position = 0
        while len(buffer) < at_least:
            chunk = _recv(sock, deadline)
            if not chunk:
                raise PeerProtocolError("peer closed the connection mid-answer")
            buffer += chunk

    while True:
        # chunk-size = 1*HEXDIG, then optional BWS before a chunk-ext (RFC 9112 7.1);
        # int(..., 16) alone would also take "0x4", "+4", " 4" or "4_0".
        size_text = line().split(b";", 1)[0].rstrip(b" \t")
        if not 0 < len(size_text) <= 16 or size_text.strip(_HEXDIGITS):
            raise PeerProtocolError("invalid chunk size")
        size = int(size_text, 16)
        if size == 0:
            while line():  # trailer fields, up to the blank line
                pass
            return bytes(body), buffer[position:], True
        if len(body) + size > MAX_ANSWER_BYTES:
            # Enough to show; the rest is never read and the connection is closed.
            take = MAX_ANSWER_BYTES + 1 - len(body)
            if len(buffer) - position < take:
                more(take)
            body += buffer[position:position + take]
            return bytes(body), b"", False
        if len(buffer) - position < size + 2:
            more(size + 2)
        body += buffer[position:position + size]
        if buffer[position + size:position + size + 2] != b"\r\n":
            raise PeerProtocolError("chunk not followed by CRLF")
        position += size + 2


def _read_until_close(sock: socket.socket, deadline: float | None, buffer: bytes) -> tuple[bytes, bool]:
    parts = [buffer]
    have = len(buffer)
    while have <= MAX_ANSWER_BYTES:
        chunk = _recv(sock, deadline)
        if not chunk:
            return b"".join(parts), True
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)[:MAX_ANSWER_BYTES + 1], False


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _decode(body: bytes, content_type: bytes) -> Any:
    if len(body) > MAX_ANSWER_BYTES:
        return body[:MAX_ANSWER_BYTES].decode("utf-8", "replace") + "…(truncated)"
    if b"json" in content_type.lower():
        try:
            # orjson, like the answer it goes into: an integer beyond 64 bits becomes a
            # float here instead of failing the whole /peers answer when serialized.
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return body.decode("utf-8", "replace")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, PeerProtocolError):
        return f"invalid answer: {exc}"
    return f"{type(exc).__name__}: {exc}"
