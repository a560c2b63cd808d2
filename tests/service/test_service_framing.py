"""Request framing, differentially: every case's bytes go to our worker and to Gunicorn's own
parser (its sync worker) running the same app with the same config.

RFC 9112 6.1 and 6.3 decide where a request's body ends and the next request starts. Two
readers that disagree on that let one client's bytes become another request (request
smuggling). Each case is sent, then a follow-up request (X-Request-Id: hidden) on the same
connection, then the connection is half-closed. An answer "served" by the app carries the
X-Request-Id the app echoes; parser refusals (400, 417, 501) come without it. Rules:

- when the reference refuses the first request, our worker serves nothing on that connection;
- our worker never serves a request made of bytes that belong to another request's body
  (X-Request-Id: smuggled, placed inside bodies and chunk data);
- when the reference serves the first request, our worker serves it with the same status,
  then at most the follow-up; unless the case says why ours is stricter.

Add a case with one line in CASES.
"""
from __future__ import annotations

import http.client
import io
import socket
from dataclasses import dataclass

import pytest

pytestmark = pytest.mark.integration

HOST = b"Host: t\r\n"
# Bytes that are a request only to a reader that ended the previous body too early.
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: t\r\nX-Request-Id: smuggled\r\n\r\n"
# Sent after every case: served by our worker only after a correctly framed first request.
FOLLOW_UP = b"GET / HTTP/1.1\r\nHost: t\r\nX-Request-Id: hidden\r\n\r\n"


def post(headers: bytes, body: bytes = b"", line: bytes = b"POST / HTTP/1.1") -> bytes:
    """A request with X-Request-Id: first; b"{n}" in `headers` becomes len(body)."""
    headers = headers.replace(b"{n}", str(len(body)).encode())
    return line + b"\r\n" + HOST + b"X-Request-Id: first\r\n" + headers + b"\r\n" + body


def chunked(body: bytes, extra: bytes = b"") -> bytes:
    return post(b"Transfer-Encoding: chunked\r\n" + extra, body)


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    # Why our worker may refuse a request the reference serves ("" = it may not).
    stricter: str = ""


# Well-formed: both serve the first request, ours then the follow-up too.
CONTROLS = [
    Case("get", b"GET / HTTP/1.1\r\n" + HOST + b"X-Request-Id: first\r\n\r\n"),
    Case("content-length", post(b"Content-Length: {n}\r\n", b"hello")),
    Case("content-length-leading-zeros", post(b"Content-Length: 005\r\n", b"hello")),
    Case("content-length-zero", post(b"Content-Length: 0\r\n")),
    Case("chunked", chunked(b"5\r\nhello\r\n0\r\n\r\n")),
    Case("chunked-capitalised", post(b"Transfer-Encoding: Chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n")),
    Case("chunk-extension", chunked(b"5;name=value\r\nhello\r\n0\r\n\r\n")),
    Case("chunk-trailer", chunked(b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n")),
    Case("chunk-uppercase-hex", chunked(b"A\r\n0123456789\r\n0\r\n\r\n")),
]

CASES = CONTROLS + [
    # Also well-formed, with something to get right.
    Case("http10-keep-alive", post(b"Connection: keep-alive\r\nContent-Length: 0\r\n",
                                   line=b"POST / HTTP/1.0")),
    Case("one-empty-line-first", b"\r\n" + post(b"Content-Length: 0\r\n")),
    Case("underscore-te-is-dropped", post(b"Content-Length: {n}\r\nTransfer_Encoding: chunked\r\n",
                                          b"0\r\n\r\n" + SMUGGLED)),
    Case("gzip-then-chunked", post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"),
         stricter="pywsgi decodes no transfer coding but chunked; refused rather than misread"),
    # RFC 9112 6.1/6.3: Content-Length together with Transfer-Encoding.
    Case("cl-then-te", post(b"Content-Length: {n}\r\nTransfer-Encoding: chunked\r\n",
                            b"0\r\n\r\n" + SMUGGLED)),
    Case("te-then-cl", post(b"Transfer-Encoding: chunked\r\nContent-Length: {n}\r\n",
                            b"0\r\n\r\n" + SMUGGLED)),
    Case("cl-and-short-te", post(b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
                                 b"0\r\n\r\n" + SMUGGLED)),
    Case("te-identity-and-cl", post(b"Transfer-Encoding: identity\r\nContent-Length: {n}\r\n",
                                    b"0\r\n\r\n" + SMUGGLED)),
    Case("te-last-not-chunked", post(b"Transfer-Encoding: chunked, identity\r\nContent-Length: 5\r\n",
                                     b"0\r\n\r\n" + SMUGGLED)),
    Case("te-gzip-only-and-cl", post(b"Transfer-Encoding: gzip\r\nContent-Length: {n}\r\n",
                                     b"0\r\n\r\n" + SMUGGLED)),
    Case("te-unknown", post(b"Transfer-Encoding: xchunked\r\nContent-Length: {n}\r\n",
                            b"0\r\n\r\n" + SMUGGLED)),
    Case("te-chunked-twice-one-header", chunked(b"0\r\n\r\n" + SMUGGLED).replace(
        b"Encoding: chunked", b"Encoding: chunked, chunked")),
    Case("te-chunked-two-headers", chunked(b"0\r\n\r\n" + SMUGGLED, b"Transfer-Encoding: chunked\r\n")),
    Case("te-chunked-and-empty-header", chunked(b"0\r\n\r\n" + SMUGGLED, b"Transfer-Encoding:\r\n")),
    Case("te-trailing-comma", post(b"Transfer-Encoding: chunked,\r\nContent-Length: 5\r\n",
                                   b"0\r\n\r\n" + SMUGGLED)),
    Case("te-quoted", post(b'Transfer-Encoding: "chunked"\r\nContent-Length: 5\r\n',
                           b"0\r\n\r\n" + SMUGGLED)),
    Case("te-space-before-colon", post(b"Transfer-Encoding : chunked\r\nContent-Length: 5\r\n",
                                       b"0\r\n\r\n" + SMUGGLED)),
    Case("te-vertical-tab", post(b"Transfer-Encoding:\x0bchunked\r\nContent-Length: 5\r\n",
                                 b"0\r\n\r\n" + SMUGGLED)),
    Case("te-obs-fold", post(b"Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n",
                             b"0\r\n\r\n" + SMUGGLED)),
    Case("te-in-http10", post(b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n" + SMUGGLED,
                              line=b"POST / HTTP/1.0")),
    # Content-Length values (RFC 9110 8.6: 1*DIGIT, one value).
    Case("two-different-cl", post(b"Content-Length: 0\r\nContent-Length: {n}\r\n", SMUGGLED)),
    Case("two-equal-cl", post(b"Content-Length: {n}\r\nContent-Length: {n}\r\n", SMUGGLED)),
    Case("cl-list", post(b"Content-Length: {n}, {n}\r\n", SMUGGLED)),
    Case("cl-plus-zero", post(b"Content-Length: +0\r\n", SMUGGLED)),
    Case("cl-underscore", post(b"Content-Length: 0_0\r\n", SMUGGLED)),
    Case("cl-negative", post(b"Content-Length: -1\r\n", SMUGGLED)),
    Case("cl-hex", post(b"Content-Length: 0x0\r\n", SMUGGLED)),
    Case("cl-inner-space", post(b"Content-Length: 0 0\r\n", SMUGGLED)),
    Case("cl-superscript-two", post(b"Content-Length: \xb2\r\n", SMUGGLED)),
    Case("cl-empty", post(b"Content-Length: \r\n", SMUGGLED)),
    Case("cl-space-before-colon", post(b"Content-Length : {n}\r\n", SMUGGLED)),
    Case("cl-obs-fold", post(b"Content-Length:\r\n {n}\r\n", SMUGGLED)),
    # Header lines (RFC 9112 2.2, 5; RFC 9110 5.5).
    Case("bare-lf-header", post(b"Content-Length: 0\nX-A: 1\r\n")),
    Case("bare-cr-in-value", post(b"X-A: 1\rContent-Length: 0\r\n")),
    Case("nul-in-value", post(b"X-A: 1\x00\r\n")),
    Case("obs-fold", post(b"X-A: 1\r\n 2\r\n")),
    Case("no-colon", post(b"X-A 1\r\n")),
    Case("empty-name", post(b": 1\r\n")),
    Case("two-hosts", post(b"Host: u\r\n")),
    Case("expect-unknown", post(b"Expect: something\r\n")),
    # Request lines (RFC 9112 3).
    Case("http09-two-words", b"GET /\r\n"),
    Case("double-space", b"GET  / HTTP/1.1\r\n" + HOST + b"\r\n"),
    Case("tab-separator", b"GET\t/ HTTP/1.1\r\n" + HOST + b"\r\n"),
    Case("lowercase-method", b"get / HTTP/1.1\r\n" + HOST + b"\r\n"),
    Case("http-1-2", b"GET / HTTP/1.2\r\n" + HOST + b"\r\n"),
    Case("http-2", b"GET / HTTP/2.0\r\n" + HOST + b"\r\n"),
    Case("bare-lf-request-line", b"GET / HTTP/1.1\n" + HOST + b"\r\n"),
    Case("space-in-target", b"GET /a b HTTP/1.1\r\n" + HOST + b"\r\n"),
    Case("two-empty-lines-first", b"\r\n\r\nGET / HTTP/1.1\r\n" + HOST + b"\r\n"),
    # Chunked bodies (RFC 9112 7.1): a bad chunk never lets its data be read as a request.
    Case("chunk-size-0x", chunked(b"0x5\r\nhello\r\n0\r\n\r\n" + SMUGGLED)),
    Case("chunk-size-plus", chunked(b"+5\r\nhello\r\n0\r\n\r\n" + SMUGGLED)),
    Case("chunk-size-leading-space", chunked(b" 5\r\nhello\r\n0\r\n\r\n" + SMUGGLED)),
    Case("chunk-size-empty", chunked(b"\r\nhello\r\n0\r\n\r\n" + SMUGGLED)),
    Case("chunk-size-too-large", chunked(b"1" + b"0" * 16 + b"\r\nhello\r\n0\r\n\r\n" + SMUGGLED)),
    Case("chunk-size-bare-lf", chunked(b"5\nhello\r\n0\r\n\r\n" + SMUGGLED)),
    Case("chunk-data-longer", chunked(b"2\r\nhello\r\n0\r\n\r\n" + SMUGGLED)),
    Case("chunk-data-no-crlf", chunked(b"5\r\nhelloXX0\r\n\r\n" + SMUGGLED)),
    Case("chunk-size-hides-request", chunked(b"3\r\nabc\r\n" + SMUGGLED + b"0\r\n\r\n")),
    Case("chunk-no-last-chunk", chunked(b"5\r\nhello\r\n")),
    # A trailer field never frames anything (RFC 9110 6.5.1): what follows is the next request.
    Case("trailer-content-length", chunked(b"0\r\nContent-Length: 5\r\n\r\n")),
]


def exchange(port: int, raw: bytes) -> list[tuple[int, str | None]]:
    """(status, X-Request-Id or None) of every answer to `raw` + FOLLOW_UP, in order."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw + FOLLOW_UP)
        sock.shutdown(socket.SHUT_WR)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    # http.client, the standard library's reader, splits the answers.
    stream = _Unclosable(bytes(received))
    fake = type("Received", (), {"makefile": lambda self, *args, **kwargs: stream})()
    answers = []
    while stream.tell() < len(received):
        response = http.client.HTTPResponse(fake)
        response.begin()
        response.read()
        answers.append((response.status, response.getheader("X-Request-Id")))
    return answers


class _Unclosable(io.BytesIO):
    """http.client closes its file after a `Connection: close` answer; later answers remain."""

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def framing_pair(launch_services):
    """(our worker, Gunicorn's sync worker): the same app and config but the worker class."""
    ours = launch_services("ours")
    reference = launch_services("reference", extra_args=["--worker-class", "sync"])
    return ours.wait_ready(), reference.wait_ready()


def test_the_reference_is_gunicorns_own_parser(framing_pair):
    ours, reference = framing_pair
    assert "Using worker: sync" in reference.stderr()
    assert "Using worker: service.worker.ServiceWorker" in ours.stderr()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_framing_is_at_least_as_strict_as_gunicorns_parser(framing_pair, case):
    ours, reference = framing_pair
    expected = exchange(reference.port, case.raw)
    answers = exchange(ours.port, case.raw)
    served = [request_id for _, request_id in answers if request_id is not None]
    assert "smuggled" not in served, f"body bytes served as a request: {answers}"
    reference_served = bool(expected) and expected[0][1] == "first"
    if not reference_served:
        assert served == [], f"the reference refused {expected}, ours served {answers}"
        return
    if case.stricter and not served:
        return
    assert served in (["first"], ["first", "hidden"]), answers
    assert answers[0][0] == expected[0][0]


def test_the_controls_keep_their_connection(framing_pair):
    """The well-formed requests are not refused by accident: the follow-up is served too."""
    ours, _ = framing_pair
    for case in CONTROLS:
        served = [request_id for _, request_id in exchange(ours.port, case.raw)]
        assert served == ["first", "hidden"], case.name
