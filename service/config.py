"""The service's settings, read from the environment once, at process start."""
from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

DEFAULT_PORT = 8080
DEFAULT_HEALTH_CHECK_PATH = "/healthz"
# Service Connect's PerRequestTimeoutSeconds is 15: a /peers answer must reach
# Envoy well before that, so one peer call gets a fifth of it.
DEFAULT_PEER_TIMEOUT_SECONDS = 3.0
MAX_PEER_TIMEOUT_SECONDS = 10.0

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot run with."""

    def __init__(self, variable: str, problem: str):
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Peer:
    name: str
    url: str  # base URL without a trailing slash, e.g. http://server.my.demo:8080


@dataclass(frozen=True)
class Settings:
    service_name: str
    port: int = DEFAULT_PORT
    peers: tuple[Peer, ...] = ()
    peer_timeout_seconds: float = DEFAULT_PEER_TIMEOUT_SECONDS
    health_check_path: str = DEFAULT_HEALTH_CHECK_PATH


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from an environment mapping; raise ConfigError naming the variable."""
    return Settings(
        service_name=_service_name(environ.get("SERVICE_NAME")),
        port=_port(environ.get("PORT")),
        peers=_peers(environ.get("PEER_URLS")),
        peer_timeout_seconds=_peer_timeout(environ.get("PEER_TIMEOUT_SECONDS")),
        health_check_path=_health_check_path(environ.get("HEALTH_CHECK_PATH")),
    )


def _service_name(raw: str | None) -> str:
    if raw is None or raw.strip() == "":
        # Same fallback as the seed's Express app: the task's hostname.
        return socket.gethostname()
    name = raw.strip()
    if not _NAME.match(name):
        raise ConfigError(
            "SERVICE_NAME",
            f"{raw!r} is not a name (letters, digits, '.', '_', '-'; at most 63 characters)",
        )
    return name


def _port(raw: str | None) -> int:
    if raw is None or raw.strip() == "":
        return DEFAULT_PORT
    try:
        port = int(raw.strip(), 10)
    except ValueError:
        raise ConfigError("PORT", f"{raw!r} is not an integer") from None
    if not 1 <= port <= 65535:
        raise ConfigError("PORT", f"{port} is outside 1-65535")
    return port


def _peers(raw: str | None) -> tuple[Peer, ...]:
    if raw is None or raw.strip() == "":
        return ()
    peers: list[Peer] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            raise ConfigError("PEER_URLS", f"empty entry in {raw!r}")
        name, sep, url = item.partition("=")
        if not sep:
            name, url = "", item
        peer = _peer(name.strip(), url.strip())
        if any(existing.name == peer.name for existing in peers):
            raise ConfigError("PEER_URLS", f"peer name {peer.name!r} appears twice")
        peers.append(peer)
    return tuple(peers)


def _peer(name: str, url: str) -> Peer:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("PEER_URLS", f"{url!r} is not an http(s) URL with a host")
    try:
        parts.port
    except ValueError:
        raise ConfigError("PEER_URLS", f"{url!r} has an invalid port") from None
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError("PEER_URLS", f"{url!r} must be a base URL (no query, fragment or credentials)")
    if not name:
        # Service Connect names look like server.my.demo: the first label is the service.
        host = parts.hostname
        name = host if host.replace(".", "").isdigit() else host.split(".")[0]
    if not _NAME.match(name):
        raise ConfigError("PEER_URLS", f"peer name {name!r} is not a name")
    return Peer(name=name, url=url.rstrip("/"))


def _peer_timeout(raw: str | None) -> float:
    if raw is None or raw.strip() == "":
        return DEFAULT_PEER_TIMEOUT_SECONDS
    try:
        seconds = float(raw.strip())
    except ValueError:
        raise ConfigError("PEER_TIMEOUT_SECONDS", f"{raw!r} is not a number") from None
    if not 0 < seconds <= MAX_PEER_TIMEOUT_SECONDS:
        raise ConfigError(
            "PEER_TIMEOUT_SECONDS",
            f"{raw.strip()} is outside (0, {MAX_PEER_TIMEOUT_SECONDS:g}]: /peers must answer "
            "before Service Connect's 15 s per-request timeout",
        )
    return seconds


def _health_check_path(raw: str | None) -> str:
    if raw is None or raw.strip() == "":
        return DEFAULT_HEALTH_CHECK_PATH
    path = raw.strip()
    if not path.startswith("/") or any(ch in path for ch in "?# ") or path in ("/", "/peers"):
        raise ConfigError(
            "HEALTH_CHECK_PATH",
            f"{raw!r} must be a path like /healthz (not / or /peers, no query)",
        )
    return path
