"""Calls to the peer services over pooled keep-alive connections, each within a deadline."""
from __future__ import annotations

import concurrent.futures
import json
import time
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.exceptions import (
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ConnectTimeoutError,
)

from service.config import Peer

# A peer's answer is shown to a person; anything longer is a bug on its side.
MAX_ANSWER_BYTES = 16 * 1024
# Keep as many idle connections per peer as a worker serves requests at once,
# so a steady load never reconnects.
POOL_CONNECTIONS_PER_PEER = 64
# The executor's wait gets this on top of the socket timeouts, so a peer that
# trickles bytes still yields its entry on time.
DEADLINE_MARGIN_SECONDS = 0.25


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


class PeerClient:
    """Calls `GET <peer>/` on each peer; one instance per worker process."""

    def __init__(self, peers: tuple[Peer, ...], timeout_seconds: float):
        self.peers = peers
        self.timeout_seconds = timeout_seconds
        self._pool = urllib3.PoolManager(
            num_pools=max(len(peers), 1),
            maxsize=POOL_CONNECTIONS_PER_PEER,
            block=False,
            retries=False,
        )
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
        attempts_left = 2
        while True:
            attempts_left -= 1
            remaining = deadline - time.perf_counter()
            try:
                response = self._pool.request(
                    "GET",
                    peer.url + "/",
                    headers={"X-Request-Id": request_id, "Accept": "application/json"},
                    timeout=urllib3.Timeout(total=max(remaining, 0.001)),
                    preload_content=False,
                    redirect=False,
                )
                try:
                    body = response.read(MAX_ANSWER_BYTES + 1)
                    if len(body) <= MAX_ANSWER_BYTES:
                        # Fully read: the connection can go back to the pool.
                        response.release_conn()
                finally:
                    response.close()
                if time.perf_counter() > deadline + DEADLINE_MARGIN_SECONDS:
                    raise ReadTimeoutError(None, peer.url, "peer trickled its answer")
                return PeerResult(
                    peer,
                    response.status,
                    _elapsed_ms(started),
                    answer=_decode(body, response.headers.get("Content-Type", "")),
                )
            except NewConnectionError as exc:
                # Checked first: urllib3 makes it a subclass of ConnectTimeoutError.
                return PeerResult(peer, None, _elapsed_ms(started), error=_describe(exc))
            except (ReadTimeoutError, ConnectTimeoutError):
                return PeerResult(peer, None, _elapsed_ms(started), error=self._timed_out())
            except ProtocolError as exc:
                # A pooled connection that the peer (or its Envoy) closed while
                # idle fails on reuse; one fresh connection settles it.
                if attempts_left and deadline - time.perf_counter() > 0:
                    continue
                return PeerResult(peer, None, _elapsed_ms(started), error=_describe(exc))
            except (HTTPError, OSError) as exc:
                return PeerResult(peer, None, _elapsed_ms(started), error=_describe(exc))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._pool.clear()

    def _executor_for_fan_out(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=4 * len(self.peers), thread_name_prefix="peer-call"
            )
        return self._executor

    def _timed_out(self) -> str:
        return f"timed out after {self.timeout_seconds:g} s"


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _decode(body: bytes, content_type: str) -> Any:
    if len(body) > MAX_ANSWER_BYTES:
        return body[:MAX_ANSWER_BYTES].decode("utf-8", "replace") + "…(truncated)"
    if "json" in content_type:
        try:
            return json.loads(body)
        except ValueError:
            pass
    return body.decode("utf-8", "replace")


def _describe(exc: BaseException) -> str:
    # urllib3 wraps the OS error several times; the innermost reason is what a person needs.
    reason = getattr(exc, "reason", None) or (exc.args[-1] if exc.args else None)
    while isinstance(reason, BaseException) and getattr(reason, "reason", None):
        reason = reason.reason
    if isinstance(reason, ConnectionRefusedError) or "Connection refused" in str(exc):
        return "connection refused"
    if isinstance(reason, BaseException):
        return f"{type(reason).__name__}: {reason}"
    return f"{type(exc).__name__}: {exc}"
