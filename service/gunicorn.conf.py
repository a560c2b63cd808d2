"""Gunicorn settings for the service container (and `make run`, tests, the benchmark).

Timeouts, from the outside in (the service template sets the first three):
- Service Connect IdleTimeoutSeconds = 60: Envoy closes a connection idle for 60 s.
  keepalive = 75 > 60, so Envoy always closes an idle connection first and never
  sends a request on a connection Gunicorn has just closed (that race is a 503 at Envoy).
- Service Connect PerRequestTimeoutSeconds = 15: /peers is bounded by
  PEER_TIMEOUT_SECONDS (default 3, at most 10, validated in service/config.py) plus a
  small margin, so it always answers before Envoy gives up.
- ECS StopTimeout = 30 s between SIGTERM and SIGKILL: graceful_timeout = 25 leaves
  5 s for the master to reap workers and exit; 25 s covers the longest /peers
  (10 s + margin) that can be in flight when SIGTERM arrives. Idle keep-alive
  connections are closed at once on SIGTERM (service/worker.py), so a stop takes
  as long as the slowest in-flight request, not 25 s.
- timeout = 30: the worker heartbeat. gevent keeps heartbeating while requests
  wait on peers, so only a worker stuck on the CPU is replaced.

Worker class and count, measured with `python -m benchmarks service` on a 2-core
machine (README, service section): gevent's pywsgi server served about 2x the requests
of Gunicorn's own gevent or gthread workers on the one-peer hop, and service/worker.py
trims its per-request path further (own header parser, one send per small response); a peer call waits in a greenlet, so no worker blocks on a peer. Two
workers for two vCPUs (Fargate cpu 2048): three added context switches and lost throughput.
"""
import os
import sys
from pathlib import Path

# The image runs this from /app without installing the package; make `service` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.config import ConfigError, load_settings  # noqa: E402

try:
    _settings = load_settings(os.environ)
except ConfigError as error:
    # One line naming the variable, before any worker starts; never a 500 later.
    print(f"service: invalid environment: {error}", file=sys.stderr)
    sys.exit(2)

bind = [f"0.0.0.0:{_settings.port}"]
worker_class = "service.worker.ServiceWorker"
workers = 2
worker_connections = 1000
keepalive = 75
timeout = 30
graceful_timeout = 25
# The app writes one JSON line per request to stdout; Gunicorn's access log would double it.
accesslog = None
errorlog = "-"
# No management socket in a container; two local instances would also fight over its path.
control_socket_disable = True
# The task's root filesystem is read-only (unless ECS Exec is on); Gunicorn's worker
# heartbeat files go to the container's tmpfs instead of /tmp.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


def post_worker_init(worker):
    # Until a worker has installed its own signal handlers, a SIGTERM reaching it runs the
    # master's inherited handler and is lost, and the stop then waits for graceful_timeout.
    # This line marks the point after which a stop is prompt (tests wait for it).
    worker.log.info("Worker ready (pid: %s)", worker.pid)
