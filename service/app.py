"""The Flask application: hello, liveness, and a fan-out to the peers."""
from __future__ import annotations

import os
import re
import sys
import time
import uuid
from typing import Any, Mapping, TextIO

import orjson
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, InternalServerError

from service.config import Settings, load_settings
from service.peers import PeerClient

REQUEST_ID_HEADER = "X-Request-Id"
# Anything else in an incoming id could forge log lines or headers downstream.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_JSON = "application/json"


def create_app(
    settings: Settings | None = None,
    environ: Mapping[str, str] | None = None,
    log_stream: TextIO | None = None,
) -> Flask:
    """Build the app; settings come from `environ` (default os.environ) unless given."""
    if settings is None:
        settings = load_settings(os.environ if environ is None else environ)
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    peer_client = PeerClient(settings.peers, settings.peer_timeout_seconds)
    app.extensions["peer_client"] = peer_client
    access_log = AccessLog(log_stream if log_stream is not None else sys.stdout, settings)

    hello = orjson.dumps(
        {"service": settings.service_name, "message": f"Hello from {settings.service_name}"}
    )
    alive = orjson.dumps({"service": settings.service_name, "status": "ok"})

    @app.before_request
    def start_request() -> None:
        g.started = time.perf_counter()
        incoming = request.headers.get(REQUEST_ID_HEADER)
        g.request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        )
        g.peer_results = None

    @app.after_request
    def finish_request(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        access_log.write(
            response.status_code, g.get("started", time.perf_counter()), request_id,
            g.get("peer_results"),
        )
        return response

    @app.get("/")
    def hello_route() -> Response:
        return Response(hello, mimetype=_JSON)

    @app.get(settings.health_check_path)
    def liveness() -> Response:
        # Liveness only: a peer being down must not get this task replaced, and two
        # services that call each other must not wait on each other to deploy.
        return Response(alive, mimetype=_JSON)

    @app.get("/peers")
    def peers_route() -> Response:
        results = peer_client.call_all(g.request_id)
        g.peer_results = results
        all_ok = all(result.ok for result in results)
        body = {
            "service": settings.service_name,
            "ok": all_ok,
            "request_id": g.request_id,
            "peers": [result.as_dict() for result in results],
        }
        return json_response(body, 200 if all_ok else 503)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        response = error.get_response()  # keeps headers such as Allow on a 405
        response.set_data(
            orjson.dumps({"error": error.name, "status": error.code, "message": error.description})
        )
        response.mimetype = _JSON
        return response

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Response:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        wrapped = InternalServerError()
        return json_response(
            {"error": wrapped.name, "status": 500, "message": wrapped.description}, 500
        )

    return app


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype=_JSON)


class AccessLog:
    """One JSON line per request on stdout, the fields CloudWatch Logs Insights queries."""

    def __init__(self, stream: TextIO, settings: Settings):
        self._stream = stream
        self._service = settings.service_name

    def write(self, status: int, started: float, request_id: str, peer_results) -> None:
        record: dict[str, Any] = {
            "time": round(time.time(), 3),
            "service": self._service,
            "method": request.method,
            "path": request.path,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "request_id": request_id,
        }
        if peer_results is not None:
            record["peers"] = [
                {
                    "peer": result.peer.name,
                    "status": result.status,
                    "latency_ms": result.latency_ms,
                    **({"error": result.error} if result.error else {}),
                }
                for result in peer_results
            ]
        # One write per line so lines from concurrent requests never interleave.
        self._stream.write(orjson.dumps(record).decode() + "\n")
        self._stream.flush()
