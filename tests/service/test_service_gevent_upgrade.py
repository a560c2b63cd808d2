"""Fails loudly when a gevent or Gunicorn upgrade changes code service/worker.py overrides or
relies on. What to do then: service/UPGRADING.md."""
from __future__ import annotations

import configparser
import hashlib
import inspect
import re

import gevent
import pytest
from gevent.pywsgi import Input, WSGIHandler
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler

from conftest import REPO
from service.worker import ServiceHandler, ServiceWorker

# The gevent releases the overrides were measured and checked on (setup.cfg allows only these).
CHECKED_GEVENT = "26.9.0"

# Each pywsgi function service/worker.py overrides or whose behaviour it relies on, with the
# sha256 (first 12 hex digits) of its source in CHECKED_GEVENT. A changed hash means: read
# the new code, port or drop the override, re-measure (UPGRADING.md), then update the hash.
PYWSGI_SOURCES = {
    # overridden
    "WSGIHandler.read_requestline": (WSGIHandler.read_requestline, "72173107a177"),
    "WSGIHandler.read_request": (WSGIHandler.read_request, "b1702b63da71"),
    "WSGIHandler.MessageClass": (WSGIHandler.MessageClass, "638ffd7781c4"),
    "WSGIHandler.finalize_headers": (WSGIHandler.finalize_headers, "ccf1b112eeac"),
    "WSGIHandler._write_with_headers": (WSGIHandler._write_with_headers, "5ccb48bf841c"),
    "WSGIHandler._sendall": (WSGIHandler._sendall, "fa0861487226"),
    "WSGIHandler.handle_one_response": (WSGIHandler.handle_one_response, "16fcb501fa89"),
    # relied on: framing decided by our headers (chunked taken from the environ), pywsgi's
    # own chunk reader, and the body discarded by the same framing before the next request
    "WSGIHandler.get_environ": (WSGIHandler.get_environ, "fbd39b74e42d"),
    "Input._chunked_read": (Input._chunked_read, "b2be7abb9d2e"),
    "Input.__read_chunk_length": (Input._Input__read_chunk_length, "156e7a3f2a75"),
    "Input._discard": (Input._discard, "bea0da8a7078"),
}

# Signatures of the Gunicorn methods the worker overrides (Gunicorn >=22,<28 is allowed, so
# only the interface is pinned here; tests/service runs the worker in real Gunicorn).
GUNICORN_SIGNATURES = {
    (PyWSGIHandler, "log_request"): "(self)",
    (GeventPyWSGIWorker, "init_process"): "(self)",
    (GeventPyWSGIWorker, "handle_exit"): "(self, sig, frame)",
}

# State on pywsgi's handler that the overrides read or write.
HANDLER_STATE = ("status", "code", "provided_date", "response_headers", "headers_sent",
                 "response_use_chunked", "response_length", "close_connection",
                 "request_version", "_write")


def source_hash(function) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:12]


def test_gevent_is_the_release_the_overrides_were_checked_on():
    assert gevent.__version__ == CHECKED_GEVENT, (
        f"gevent {gevent.__version__}: follow service/UPGRADING.md, then set CHECKED_GEVENT")


def test_the_pins_allow_only_the_checked_release_line():
    requirements = (REPO / "service" / "requirements.txt").read_text()
    assert f"gevent=={CHECKED_GEVENT}\n" in requirements
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    [spec] = [line.strip() for line in setup["options"]["install_requires"].splitlines()
              if line.strip().startswith("gevent")]
    major = CHECKED_GEVENT.split(".")[0]
    assert re.fullmatch(rf"gevent>={major}\.\d+,<{int(major) + 1}", spec), spec


@pytest.mark.parametrize("name", PYWSGI_SOURCES)
def test_pywsgi_code_the_worker_depends_on_is_unchanged(name):
    function, expected = PYWSGI_SOURCES[name]
    assert source_hash(function) == expected, (
        f"gevent changed {name}: see service/UPGRADING.md before updating this hash")


@pytest.mark.parametrize(("owner", "name"), list(GUNICORN_SIGNATURES),
                         ids=[name for _, name in GUNICORN_SIGNATURES])
def test_gunicorn_methods_the_worker_overrides_keep_their_signature(owner, name):
    assert str(inspect.signature(getattr(owner, name))) == GUNICORN_SIGNATURES[(owner, name)]


def test_the_handler_state_the_overrides_use_still_exists():
    missing = [name for name in HANDLER_STATE if not hasattr(WSGIHandler, name)]
    assert missing == []


def test_every_override_in_the_worker_is_in_these_tables():
    """A new override must be added here (and measured), not slip in unguarded."""
    guarded = {name.split(".")[1] for name in PYWSGI_SOURCES} | {n for _, n in GUNICORN_SIGNATURES}
    handler_overrides = {name for name in vars(ServiceHandler)
                         if callable(getattr(ServiceHandler, name)) and hasattr(WSGIHandler, name)}
    worker_overrides = {name for name in vars(ServiceWorker)
                        if callable(getattr(ServiceWorker, name)) and hasattr(GeventPyWSGIWorker, name)}
    assert handler_overrides | worker_overrides <= guarded, (handler_overrides | worker_overrides) - guarded
