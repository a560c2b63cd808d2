import time

import pytest


def test_hello_answers_json_with_the_service_name(make_client):
    response = make_client(service_name="server").get("/")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"service": "server", "message": "Hello from server"}


def test_liveness_never_calls_a_peer(make_client, hanging_peer):
    client = make_client(peers=[("server", hanging_peer.url)], peer_timeout_seconds=5.0)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    time.sleep(0.2)
    assert hanging_peer.accepted == 0


def test_the_liveness_path_follows_the_setting(make_client):
    client = make_client(health_check_path="/live")
    assert client.get("/live").status_code == 200
    assert client.get("/healthz").status_code == 404


def test_not_found_is_json(make_client):
    response = make_client().get("/nowhere")
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.get_json()["status"] == 404


def test_wrong_method_is_json_and_keeps_allow(make_client):
    response = make_client().post("/")
    assert response.status_code == 405
    assert response.mimetype == "application/json"
    assert "GET" in response.headers["Allow"]


def test_an_unexpected_error_is_a_json_500(make_client):
    client = make_client()

    def broken():
        raise RuntimeError("bug")

    client.application.add_url_rule("/broken", view_func=broken)
    response = client.get("/broken")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "Internal Server Error",
        "status": 500,
        "message": response.get_json()["message"],
    }
    assert "bug" not in response.get_data(as_text=True)


def test_an_incoming_request_id_is_kept_and_logged(make_client, log_lines):
    response = make_client().get("/", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    [line] = log_lines()
    assert line["request_id"] == "abc-123"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/", 200)
    assert line["duration_ms"] >= 0


@pytest.mark.parametrize("incoming", [None, "", "bad id with spaces", "x\"}{", "x" * 200])
def test_a_missing_or_unsafe_request_id_is_replaced(make_client, incoming):
    headers = {} if incoming is None else {"X-Request-Id": incoming}
    response = make_client().get("/", headers=headers)
    generated = response.headers["X-Request-Id"]
    assert generated and generated != incoming
    assert len(generated) == 32


def test_one_log_line_per_request_including_errors(make_client, log_lines):
    client = make_client()
    client.get("/")
    client.get("/nowhere")
    client.post("/")
    assert [line["status"] for line in log_lines()] == [200, 404, 405]


def test_peers_without_peers_is_ok_and_empty(make_client):
    response = make_client().get("/peers")
    assert response.status_code == 200
    assert response.get_json()["peers"] == []


def test_peers_shows_the_answer_and_passes_the_request_id_on(make_client, peer_server, log_lines):
    server = peer_server(name="server")
    response = make_client(peers=[("server", server.url)]).get(
        "/peers", headers={"X-Request-Id": "trace-1"}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] is True
    [entry] = body["peers"]
    assert entry["name"] == "server"
    assert entry["url"] == server.url
    assert entry["status"] == 200
    assert entry["answer"] == {"service": "server", "message": "Hello from server"}
    assert entry["latency_ms"] >= 0
    assert server.request_ids == ["trace-1"]
    [line] = log_lines()
    assert line["peers"] == [{"peer": "server", "status": 200, "latency_ms": entry["latency_ms"]}]


def test_a_peer_answering_5xx_makes_peers_503(make_client, peer_server):
    failing = peer_server(name="server", status=500)
    response = make_client(peers=[("server", failing.url)]).get("/peers")
    assert response.status_code == 503
    assert response.get_json()["peers"][0]["status"] == 500


def test_a_refusing_peer_is_reported_not_raised(make_client, refused_url):
    response = make_client(peers=[("server", refused_url)]).get("/peers")
    assert response.status_code == 503
    entry = response.get_json()["peers"][0]
    assert entry["status"] is None
    assert entry["error"] == "connection refused"


@pytest.mark.parametrize("fan_out", [False, True], ids=["one-peer", "two-peers"])
def test_a_hanging_peer_yields_its_entry_within_the_timeout(
    make_client, hanging_peer, peer_server, fan_out
):
    peers = [("stuck", hanging_peer.url)]
    if fan_out:
        peers.append(("server", peer_server(name="server").url))
    client = make_client(peers=peers, peer_timeout_seconds=0.5)
    started = time.monotonic()
    response = client.get("/peers")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    entries = {entry["name"]: entry for entry in response.get_json()["peers"]}
    assert entries["stuck"]["error"] == "timed out after 0.5 s"
    if fan_out:
        assert entries["server"]["status"] == 200
    # Timeout 0.5 s plus the 0.25 s deadline margin, plus slack for a loaded machine.
    assert 0.45 <= elapsed < 2.0


def test_peers_are_called_concurrently(make_client, peer_server):
    slow = [peer_server(name=f"slow{i}", delay=0.6) for i in range(3)]
    client = make_client(peers=[(s.name, s.url) for s in slow], peer_timeout_seconds=5.0)
    started = time.monotonic()
    response = client.get("/peers")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    # Sequential calls would take at least 1.8 s.
    assert elapsed < 1.5


def test_errors_carry_the_request_id_and_the_log_shows_the_decoded_path(make_client, log_lines):
    client = make_client()

    def broken():
        raise RuntimeError("bug")

    client.application.add_url_rule("/broken", view_func=broken)
    assert client.get("/broken", headers={"X-Request-Id": "err-1"}).headers["X-Request-Id"] == "err-1"
    assert client.get("/caf%C3%A9").headers["X-Request-Id"]
    first, second = log_lines()
    assert (first["path"], first["status"], first["request_id"]) == ("/broken", 500, "err-1")
    assert (second["path"], second["status"]) == ("/café", 404)
