"""The Flask application: hello, liveness, and a fan-out to the peers."""
from __future__ import annotations

import os
import random
import re
import sys
import time
from typing import Any, Callable, Iterable, Mapping, TextIO

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, InternalServerError

from service.config import Settings, load_settings
from service.peers import PeerClient

REQUEST_ID_HEADER = "X-Request-Id"
# Anything else in an incoming id could forge log lines or headers downstream.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_JSON = "application/json"
# Where the middleware leaves the request id, and /peers its results, for the access log.
REQUEST_ID_KEY = "service.request_id"
PEER_RESULTS_KEY = "service.peer_results"


def new_request_id() -> str:
    # 32 hex digits like uuid4().hex, without a getrandom call per request (the random
    # module reseeds in each forked worker). An id to correlate logs, not a secret.
    return "%032x" % random.getrandbits(128)


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

    app.wsgi_app = RequestIdAndLog(app.wsgi_app, access_log)

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
        environ = request.environ
        request_id = environ[REQUEST_ID_KEY]
        results = peer_client.call_all(request_id)
        environ[PEER_RESULTS_KEY] = results
        all_ok = all(result.ok for result in results)
        body = {
            "service": settings.service_name,
            "ok": all_ok,
            "request_id": request_id,
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


class RequestIdAndLog:
    """WSGI middleware around Flask: the request id on every answer, one log line per request.

    The id is the incoming X-Request-Id when it is safe, else a new one; errors that Flask
    turns into answers (404, 405, 500) get both too. A middleware rather than Flask's
    before/after_request hooks and `g`: the same work with less dispatch per request.
    """

    def __init__(self, wsgi_app: Callable, access_log: "AccessLog"):
        self.wsgi_app = wsgi_app
        self.access_log = access_log

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        incoming = environ.get("HTTP_X_REQUEST_ID")
        request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else new_request_id()
        )
        environ[REQUEST_ID_KEY] = request_id
        statuses: list[str] = []

        def start_with_request_id(status: str, headers: list, exc_info=None):
            headers.append((REQUEST_ID_HEADER, request_id))
            statuses.append(status)
            return start_response(status, headers, exc_info)

        result = self.wsgi_app(environ, start_with_request_id)
        self.access_log.write(
            environ, int(statuses[-1][:3]) if statuses else 500, started, request_id,
            environ.get(PEER_RESULTS_KEY),
        )
        return result


class AccessLog:
    """One JSON line per request on stdout, the fields CloudWatch Logs Insights queries."""

    def __init__(self, stream: TextIO, settings: Settings):
        self._stream = stream
        self._service = settings.service_name

    def write(self, environ: dict, status: int, started: float, request_id: str,
              peer_results) -> None:
        path = environ.get("PATH_INFO") or ""
        record: dict[str, Any] = {
            "time": round(time.time(), 3),
            "service": self._service,
            "method": environ.get("REQUEST_METHOD"),
            # As Flask's request.path shows it: WSGI's latin-1 string read as UTF-8.
            "path": "/" + path.encode("latin-1").decode("utf-8", "replace").lstrip("/"),
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
        self._stream.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE).decode())
        self._stream.flush()
