"""`make run`: every service of topology.yaml under Gunicorn on its own loopback port.

Each gets PEER_URLS pointing at the local ports of the services it calls, so
`curl localhost:PORT/peers` shows them talking as they do through Service Connect.
Each listens on 127.0.0.1 only (the container's 0.0.0.0 would expose a development
service to the network). A service that exits is reported and the others keep running,
so its callers' /peers shows the failure; Ctrl-C (or SIGTERM) stops them all, with exit
status 1 when one had exited. A development tool: the container never runs it.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GUNICORN_ARGS = ["--config", "service/gunicorn.conf.py", "service.app:create_app()"]
STOP_TIMEOUT_SECONDS = 30


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise _Stop


def local_environments(topology, base_port: int) -> dict[str, dict[str, str]]:
    """Service name -> the environment the service template would give it, on loopback."""
    ports = {service.name: base_port + index for index, service in enumerate(topology.services)}
    return {
        service.name: {
            "SERVICE_NAME": service.name,
            "PORT": str(ports[service.name]),
            "PEER_URLS": ",".join(
                f"{callee}=http://127.0.0.1:{ports[callee]}" for callee in service.calls
            ),
            "HEALTH_CHECK_PATH": service.health_check_path,
            **dict(service.environment),
        }
        for service in topology.services
    }


def main(argv: list[str] | None = None) -> int:
    # The generator validates topology.yaml; `make run` installs both packages.
    from generator.topology import TopologyError, load

    parser = argparse.ArgumentParser(prog="python -m service.run", description=__doc__)
    parser.add_argument("--topology", type=Path, default=REPO / "topology.yaml")
    parser.add_argument("--base-port", type=int, default=8081)
    args = parser.parse_args(argv)
    try:
        environments = local_environments(load(args.topology), args.base_port)
    except TopologyError as error:
        print(f"run: {error}", file=sys.stderr)
        return 2
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    processes: dict[str, subprocess.Popen] = {}
    exited: set[str] = set()
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        for name, env in environments.items():
            # Own session: Ctrl-C reaches only this process, which then stops every
            # service gracefully, instead of racing Gunicorn's own quick shutdown.
            processes[name] = subprocess.Popen(
                # A command-line --bind replaces the config file's 0.0.0.0.
                [gunicorn, *GUNICORN_ARGS, "--bind", f"127.0.0.1:{env['PORT']}"],
                cwd=REPO, env={**os.environ, **env}, start_new_session=True,
            )
        print("\nservices (Ctrl-C stops them all):")
        for name, env in environments.items():
            port = env["PORT"]
            print(f"  {name:12} curl 127.0.0.1:{port}/   curl 127.0.0.1:{port}/peers")
        print(flush=True)
        while len(exited) < len(processes):
            _report_exits(processes, exited)
            time.sleep(0.5)
        print("run: every service has exited", file=sys.stderr)
        return 1
    except _Stop:
        _report_exits(processes, exited)
        return 1 if exited else 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop_all(processes.values())


def _report_exits(processes: dict[str, subprocess.Popen], exited: set[str]) -> None:
    """Report each service that exited since the last look, once."""
    for name, process in processes.items():
        if name not in exited and process.poll() is not None:
            exited.add(name)
            print(f"run: {name} exited with {process.returncode}; the others keep running "
                  f"(their /peers shows it down); Ctrl-C stops them", file=sys.stderr, flush=True)


def _stop_all(processes) -> None:
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


if __name__ == "__main__":
    from generator.cli import quiet_when_the_reader_leaves

    sys.exit(quiet_when_the_reader_leaves(main)())
