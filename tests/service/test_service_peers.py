"""The peer client (service/peers.py) against a raw-socket server whose every byte the test writes."""
from __future__ import annotations

import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from conftest import REPO, RawPeer
from service.config import Peer
from service.peers import DEADLINE_MARGIN_SECONDS, MAX_ANSWER_BYTES, PeerClient

HELLO = b'{"service": "server", "message": "Hello from server"}'


def length_response(body: bytes = HELLO, extra_headers: bytes = b"", status: bytes = b"200 OK",
                    version: bytes = b"HTTP/1.1") -> bytes:
    return (version + b" " + status + b"\r\nContent-Type: application/json\r\n"
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n" + extra_headers
            + b"\r\n" + body)


def client_for(peer: RawPeer, timeout: float = 2.0) -> tuple[PeerClient, Peer]:
    target = Peer("server", peer.url)
    return PeerClient((target,), timeout), target


def serve_forever(response: bytes):
    """Keep-alive: answer every request on the connection with `response`."""

    def script(connection, server):
        while server.read_request(connection) is not None:
            connection.sendall(response)

    return script


def test_content_length_answer_on_a_reused_connection(raw_peer):
    peer = raw_peer(serve_forever(length_response()))
    client, target = client_for(peer)
    first = client.call(target, "req-1")
    second = client.call(target, "req-2")
    assert (first.status, first.answer) == (200, {"service": "server", "message": "Hello from server"})
    assert first.error is None and first.ok
    assert second.answer == first.answer
    assert peer.accepted == 1
    head = peer.requests[0].decode()
    assert head.startswith("GET / HTTP/1.1\r\n")
    assert f"Host: {peer.url.removeprefix('http://')}\r\n" in head
    assert "X-Request-Id: req-1\r\n" in head
    assert "X-Request-Id: req-2\r\n" in peer.requests[1].decode()
    client.close()


def test_a_base_path_is_kept(raw_peer):
    peer = raw_peer(serve_forever(length_response()))
    target = Peer("server", peer.url + "/api")
    result = PeerClient((target,), 2.0).call(target, "r")
    assert result.status == 200
    assert peer.requests[0].startswith(b"GET /api/ HTTP/1.1\r\n")


def test_chunked_answer_with_extensions_and_trailers_in_pieces(raw_peer):
    def script(connection, server):
        while server.read_request(connection) is not None:
            pieces = [
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
                b"Transfer-Encoding: chunked\r\n\r\n",
                b"5;ext=1\r\n" + HELLO[:5] + b"\r\n",
                hex(len(HELLO) - 5)[2:].encode() + b"\r\n" + HELLO[5:20],
                HELLO[20:] + b"\r",
                b"\n0\r\nX-Trailer: yes\r\n\r\n",
            ]
            for piece in pieces:
                connection.sendall(piece)
                time.sleep(0.01)

    peer = raw_peer(script)
    client, target = client_for(peer)
    for _ in range(2):
        result = client.call(target, "r")
        assert result.status == 200
        assert result.answer == {"service": "server", "message": "Hello from server"}
    assert peer.accepted == 1  # chunked answers keep the connection


def test_close_delimited_http10_answer_is_read_to_the_end_and_not_reused(raw_peer):
    def script(connection, server):
        server.read_request(connection)
        connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello ")
        time.sleep(0.05)
        connection.sendall(b"world")
        connection.close()

    peer = raw_peer(script)
    client, target = client_for(peer)
    assert client.call(target, "r").answer == "hello world"
    assert client.call(target, "r").answer == "hello world"
    assert peer.accepted == 2


def test_http10_keep_alive_is_honoured(raw_peer):
    peer = raw_peer(serve_forever(length_response(version=b"HTTP/1.0",
                                                  extra_headers=b"Connection: keep-alive\r\n")))
    client, target = client_for(peer)
    assert client.call(target, "r").status == 200
    assert client.call(target, "r").status == 200
    assert peer.accepted == 1


def test_connection_close_is_respected(raw_peer):
    def script(connection, server):
        server.read_request(connection)
        connection.sendall(length_response(extra_headers=b"Connection: close\r\n"))
        # Keeps the socket open: only the header tells the client not to reuse it.
        time.sleep(1)

    peer = raw_peer(script)
    client, target = client_for(peer)
    assert client.call(target, "r").status == 200
    assert client.call(target, "r").status == 200
    assert peer.accepted == 2


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_a_pooled_connection_closed_while_idle_is_retried_once_on_a_fresh_one(raw_peer, how):
    def script(connection, server):
        server.read_request(connection)
        connection.sendall(length_response())
        time.sleep(0.1)
        if how == "rst":
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()

    peer = raw_peer(script)
    client, target = client_for(peer)
    assert client.call(target, "r").status == 200
    time.sleep(0.3)  # the peer has closed the idle connection meanwhile
    second = client.call(target, "r")
    assert (second.status, second.error) == (200, None)
    assert peer.accepted == 2


def test_a_fresh_connection_closed_without_an_answer_is_an_error_not_a_retry(raw_peer):
    def script(connection, server):
        server.read_request(connection)
        connection.close()

    peer = raw_peer(script)
    client, target = client_for(peer)
    result = client.call(target, "r")
    assert result.status is None
    assert result.error == "invalid answer: peer closed the connection without answering"
    assert peer.accepted == 1


def test_a_refused_connection(refused_url):
    target = Peer("server", refused_url)
    result = PeerClient((target,), 2.0).call(target, "r")
    assert (result.status, result.error) == (None, "connection refused")


def test_an_unresolvable_name_is_reported():
    target = Peer("server", "http://no-such-host.invalid:8080")
    result = PeerClient((target,), 2.0).call(target, "r")
    assert result.status is None
    assert result.error.startswith("gaierror: ")


def test_a_hanging_peer_times_out_on_time(raw_peer):
    peer = raw_peer(lambda connection, server: time.sleep(5))
    client, target = client_for(peer, timeout=0.5)
    started = time.monotonic()
    result = client.call(target, "r")
    elapsed = time.monotonic() - started
    assert (result.status, result.error) == (None, "timed out after 0.5 s")
    assert 0.45 <= elapsed < 0.5 + DEADLINE_MARGIN_SECONDS


@pytest.mark.parametrize("part", ["head", "body"])
def test_a_trickling_peer_cannot_outlast_the_timeout(raw_peer, part):
    response = length_response(body=b'"' + b"x" * 200 + b'"')
    start = 0 if part == "head" else response.index(b"\r\n\r\n") + 4

    def script(connection, server):
        server.read_request(connection)
        connection.sendall(response[:start])
        for index in range(start, len(response)):
            connection.sendall(response[index:index + 1])
            time.sleep(0.05)  # every byte well within any per-read timeout

    peer = raw_peer(script)
    client, target = client_for(peer, timeout=0.5)
    started = time.monotonic()
    result = client.call(target, "r")
    elapsed = time.monotonic() - started
    assert (result.status, result.error) == (None, "timed out after 0.5 s")
    assert elapsed < 0.5 + DEADLINE_MARGIN_SECONDS


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_a_huge_answer_is_cut_and_the_connection_dropped(raw_peer, framing):
    body = b"y" * (4 * 1024 * 1024)

    def script(connection, server):
        server.read_request(connection)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        try:
            if framing == "length":
                connection.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            elif framing == "chunked":
                connection.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
                for offset in range(0, len(body), 4096):
                    connection.sendall(b"1000\r\n" + body[offset:offset + 4096] + b"\r\n")
                connection.sendall(b"0\r\n\r\n")
            else:
                connection.sendall(head + b"\r\n" + body)
                connection.close()
        except OSError:
            pass  # the client stopped reading and closed

    peer = raw_peer(script)
    client, target = client_for(peer)
    started = time.monotonic()
    result = client.call(target, "r")
    assert time.monotonic() - started < 1.5
    assert result.status == 200
    assert result.answer == "y" * MAX_ANSWER_BYTES + "…(truncated)"
    assert client._targets[peer.url].idle == []


def test_an_answer_of_exactly_the_limit_is_whole(raw_peer):
    body = b"z" * MAX_ANSWER_BYTES
    peer = raw_peer(serve_forever(length_response(body=body, extra_headers=b"")))
    client, target = client_for(peer)
    result = client.call(target, "r")
    # Content-Type says JSON but it is not: shown as text, whole.
    assert result.answer == "z" * MAX_ANSWER_BYTES


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n", "invalid answer: not an HTTP response"),
        (b"HTTP/1.1 2xx OK\r\n\r\n", "invalid answer: not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid answer: invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
         "invalid answer: invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
         "invalid answer: invalid chunk size"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "invalid answer: peer closed the connection mid-answer"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 20000, "invalid answer: response head too large"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"0\r\n\r\n", "invalid answer: both Content-Length and Transfer-Encoding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
         b"0\r\n\r\n", "invalid answer: both Content-Length and Transfer-Encoding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x4\r\nabcd\r\n0\r\n\r\n",
         "invalid answer: invalid chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+4\r\nabcd\r\n0\r\n\r\n",
         "invalid answer: invalid chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 4\r\nabcd\r\n0\r\n\r\n",
         "invalid answer: invalid chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nabcd\r\n0\r\n\r\n",
         "invalid answer: invalid chunk size"),
    ],
    ids=["not-http", "bad-status", "negative-length", "two-lengths", "bad-chunk", "short-body",
         "huge-head", "length-then-chunked", "chunked-then-length", "chunk-size-0x",
         "chunk-size-plus", "chunk-size-space", "chunk-size-empty"],
)
def test_answers_that_are_not_http_are_errors(raw_peer, answer, error):
    def script(connection, server):
        server.read_request(connection)
        connection.sendall(answer)
        time.sleep(0.2)
        connection.close()

    peer = raw_peer(script)
    client, target = client_for(peer)
    started = time.monotonic()
    result = client.call(target, "r")
    assert (result.status, result.error) == (None, error)
    assert time.monotonic() - started < 1.0
    assert client._targets[peer.url].idle == []


def test_a_conflicting_answer_drops_the_connection_and_the_next_call_reconnects(raw_peer):
    # The bytes after a Content-Length + Transfer-Encoding answer could be read as the answer
    # to the next request; the connection is closed instead of pooled.
    def script(connection, server):
        if server.accepted == 1:
            server.read_request(connection)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTransfer-Encoding: "
                               b"chunked\r\n\r\n" + length_response(body=b'{"forged": 1}'))
        while server.read_request(connection) is not None:
            connection.sendall(length_response())

    peer = raw_peer(script)
    client, target = client_for(peer)
    assert client.call(target, "r").status is None
    assert client._targets[peer.url].idle == []
    second = client.call(target, "r")
    assert second.answer["service"] == "server"
    assert peer.accepted == 2


def test_a_folded_header_is_read_as_one_value_with_spaces(raw_peer):
    # RFC 9112 5.2: a user agent replaces each obs-fold with SP before interpreting the value.
    answer = (b"HTTP/1.1 200 OK\r\n fold after the status line\r\nContent-Type:\r\n"
              b"\tapplication/json\r\nX-Note: one \r\n  two\r\nContent-Length:\r\n "
              + str(len(HELLO)).encode() + b"\r\n\r\n" + HELLO)
    peer = raw_peer(serve_forever(answer))
    client, target = client_for(peer)
    first, second = client.call(target, "r"), client.call(target, "r")
    # Content-Type was folded: still JSON. Content-Length was folded: still the framing, so
    # the connection stays usable.
    assert first.answer == second.answer == {"service": "server", "message": "Hello from server"}
    assert peer.accepted == 1


def test_interim_answers_are_skipped_and_204_has_no_body(raw_peer):
    def script(connection, server):
        server.read_request(connection)
        connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" + length_response())
        server.read_request(connection)
        connection.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
        server.read_request(connection)
        connection.sendall(length_response(status=b"503 Service Unavailable", body=b'{"down":1}'))
        time.sleep(0.5)

    peer = raw_peer(script)
    client, target = client_for(peer)
    assert client.call(target, "r").answer["service"] == "server"
    no_content = client.call(target, "r")
    assert (no_content.status, no_content.answer, no_content.ok) == (204, "", True)
    failing = client.call(target, "r")
    assert (failing.status, failing.answer, failing.ok) == (503, {"down": 1}, False)
    assert peer.accepted == 1


def test_bytes_after_the_answer_make_the_connection_unusable(raw_peer):
    def script(connection, server):
        server.read_request(connection)
        connection.sendall(length_response() + b"HTTP/1.1 200 OK\r\n")
        time.sleep(0.5)

    peer = raw_peer(script)
    client, target = client_for(peer)
    assert client.call(target, "r").status == 200
    assert client._targets[peer.url].idle == []


def test_json_beyond_64_bit_integers_still_serializes(raw_peer, make_client):
    peer = raw_peer(serve_forever(length_response(body=b'{"n": 123456789012345678901234567890}')))
    response = make_client(peers=[("server", peer.url)]).get("/peers")
    assert response.status_code == 200
    assert response.get_json()["peers"][0]["answer"]["n"] == pytest.approx(1.2345678901234568e29)


def test_a_request_id_with_a_line_break_is_refused(raw_peer):
    peer = raw_peer(serve_forever(length_response()))
    client, target = client_for(peer)
    with pytest.raises(ValueError):
        client.call(target, "a\r\nX-Evil: 1")


def test_the_pool_keeps_one_connection_per_concurrent_call(raw_peer):
    def script(connection, server):
        while server.read_request(connection) is not None:
            time.sleep(0.2)
            connection.sendall(length_response())

    peer = raw_peer(script)
    client, target = client_for(peer)
    threads = [threading.Thread(target=client.call, args=(target, "r")) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peer.accepted == 4
    assert len(client._targets[peer.url].idle) == 4
    assert client.call(target, "r").status == 200
    assert peer.accepted == 4
    client.close()
    assert client._targets[peer.url].idle == []


GEVENT_SCRIPT = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import socket, sys, time, gevent
    from service.config import Peer
    from service.peers import PeerClient

    listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(8)
    url = "http://127.0.0.1:%d" % listener.getsockname()[1]

    def trickle():
        connection, _ = listener.accept()
        connection.recv(65536)
        for byte in b"HTTP/1.1 200 OK\\r\\nContent-Length: 5000\\r\\n\\r\\n" + b"x" * 5000:
            connection.sendall(bytes([byte]))
            gevent.sleep(0.02)

    gevent.spawn(trickle)
    peer = Peer("server", url)
    client = PeerClient((peer,), 0.5)
    started = time.monotonic()
    # Other greenlets keep running while the call waits.
    ticks = []
    ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.05)) for _ in range(100)])
    result = client.call(peer, "r")
    elapsed = time.monotonic() - started
    assert result.error == "timed out after 0.5 s", result
    assert elapsed < 0.75, elapsed
    assert len(ticks) >= 5, ticks

    # A keep-alive peer that closes its idle connection after the second answer.
    listener2 = socket.socket(); listener2.bind(("127.0.0.1", 0)); listener2.listen(8)
    accepted = []

    def serve():
        while True:
            connection, _ = listener2.accept()
            accepted.append(connection)
            gevent.spawn(answer_twice, connection)

    def answer_twice(connection):
        for _ in range(2):
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n"
                               b"Content-Length: 7\\r\\n\\r\\n{\\"a\\":1}")
        gevent.sleep(0.05)
        connection.close()

    gevent.spawn(serve)
    peer2 = Peer("server", "http://127.0.0.1:%d" % listener2.getsockname()[1])
    client2 = PeerClient((peer2,), 2.0)
    answers = []
    for _ in range(3):
        answers.append(client2.call(peer2, "r"))
        gevent.sleep(0.2)
    assert [(a.status, a.answer) for a in answers] == [(200, {"a": 1})] * 3, answers
    assert len(accepted) == 2, accepted
    print("ok", round(elapsed, 3))
    """
)


def test_under_gevent_a_trickling_peer_times_out_and_a_stale_connection_is_retried():
    result = subprocess.run([sys.executable, "-c", GEVENT_SCRIPT], cwd=REPO, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


@pytest.fixture
def tls_peer(tmp_path):
    """An HTTPS peer on localhost with a self-signed certificate: (url, certificate path)."""
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def script(connection, server):
        try:
            tls = context.wrap_socket(connection, server_side=True)
        except (ssl.SSLError, OSError):
            return
        while server.read_request(tls) is not None:
            tls.sendall(length_response())

    peer = RawPeer(script)
    yield peer.url.replace("http://127.0.0.1", "https://localhost"), cert, peer
    peer.close()


def test_https_peers_are_verified_and_keep_alive(tls_peer):
    import ssl

    url, cert, peer = tls_peer
    target = Peer("server", url)
    unverified = PeerClient((target,), 5.0).call(target, "r")
    assert unverified.status is None
    assert "CERTIFICATE_VERIFY_FAILED" in unverified.error
    client = PeerClient((target,), 5.0)
    client._ssl_context = ssl.create_default_context(cafile=str(cert))
    accepted_before = peer.accepted
    for _ in range(2):
        result = client.call(target, "r")
        assert (result.status, result.answer["service"]) == (200, "server")
    assert peer.accepted == accepted_before + 1
    assert b"Host: localhost:" in peer.requests[-1]


def test_a_chunk_size_line_cut_between_reads_is_completed_not_spun_on():
    # Regression: a chunk-size or trailer line cut between two TCP reads once made the
    # reader look at the same bytes forever, a busy loop no timeout could interrupt.
    from service import peers as peers_module

    ours, theirs = socket.socketpair()
    result = {}

    def feed():
        for piece in (b"1", b"4\r\n", b"abcdefghijklmnopqrst", b"\r\n0", b"\r\nX-T", b"railer: 1\r", b"\n\r\n"):
            theirs.sendall(piece)
            time.sleep(0.02)

    def read():
        result["answer"] = peers_module._read_chunked(ours, time.monotonic() + 5, b"")

    threading.Thread(target=feed, daemon=True).start()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    ours.close()
    theirs.close()
    assert not reader.is_alive(), "the chunked reader did not finish"
    assert result["answer"] == (b"abcdefghijklmnopqrst", b"", True)
