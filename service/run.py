"""`make run`: every service of topology.yaml under Gunicorn on its own loopback port.

Each gets PEER_URLS pointing at the local ports of the services it calls, so
`curl localhost:PORT/peers` shows them talking as they do through Service Connect.
Ctrl-C (or SIGTERM) stops them all.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
GUNICORN_ARGS = ["--config", "service/gunicorn.conf.py", "service.app:create_app()"]


def read_topology(path: Path) -> dict[str, list[str]]:
    """Service name -> names it calls; the generator validates the rest of the file."""
    document = yaml.safe_load(path.read_text())
    services = (document or {}).get("services") or {}
    if not isinstance(services, dict) or not services:
        raise SystemExit(f"run: {path}: no services")
    calls = {}
    for name, spec in services.items():
        callees = (spec or {}).get("calls") or []
        unknown = [callee for callee in callees if callee not in services]
        if unknown:
            raise SystemExit(f"run: {path}: services.{name}.calls: unknown service {unknown[0]!r}")
        calls[str(name)] = [str(callee) for callee in callees]
    return calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.run", description=__doc__)
    parser.add_argument("--topology", type=Path, default=REPO / "topology.yaml")
    parser.add_argument("--base-port", type=int, default=8081)
    args = parser.parse_args(argv)
    calls = read_topology(args.topology)
    ports = {name: args.base_port + index for index, name in enumerate(calls)}
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    processes: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        for name, callees in calls.items():
            env = {
                **os.environ,
                "SERVICE_NAME": name,
                "PORT": str(ports[name]),
                "PEER_URLS": ",".join(f"{c}=http://127.0.0.1:{ports[c]}" for c in callees),
                "PYTHONUNBUFFERED": "1",
            }
            processes.append(subprocess.Popen([gunicorn, *GUNICORN_ARGS], cwd=REPO, env=env))
        print("\nservices (Ctrl-C stops them all):")
        for name, port in ports.items():
            print(f"  {name:12} curl localhost:{port}/   curl localhost:{port}/peers")
        print(flush=True)
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        print("run: a service exited; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    sys.exit(main())
