"""Service benchmark: our Gunicorn pair against the seed-style Express pair, with wrk on loopback.

Each side runs as a caller and a callee on 127.0.0.1. For each connection count the
script alternates ours/Express round after round, so both see the same machine state,
and prints medians over the rounds. It prints and records; it never asserts.

Environment knobs: SERVICE_BENCH_ROUNDS (default 3), SERVICE_BENCH_SECONDS (default 10),
SERVICE_BENCH_CONNECTIONS (default "32,64"), SERVICE_BENCH_ENDPOINTS (default "hello,hop"; e.g.
"hop" to measure only the peer hop), EXPRESS_ANCHOR (default ../shared/anchors/express),
SERVICE_BENCH_GUNICORN_ARGS (added to our Gunicorn command line; "--worker-class gevent"
measures Gunicorn's own parser and gevent worker, the other route issue 11 weighed).

`python -m benchmarks.service_bench overrides` measures what each of service/worker.py's
pywsgi overrides saves: in one process (min of repeats, so a busy machine disturbs it
little), and end to end with every override dropped (`Stock*` worker classes below) against
the worker as it is, CPU time of the caller and callee processes per hop.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "service.json"
GUNICORN_COMMAND = ["gunicorn", "--config", "service/gunicorn.conf.py", "service.app:create_app()"]
HOST = "127.0.0.1"
WRK_THREADS = 2
WRK_TIMEOUT = "5s"
START_TIMEOUT_SECONDS = 30
NPM_TIMEOUT_SECONDS = 300
ENDPOINTS = ("hello", "hop")


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    # CPU time (user + system) of the side's caller and callee processes per request: the
    # figure a machine shared with other work disturbs least.
    cpu_us_per_request: float = 0.0


@dataclass
class Side:
    name: str
    caller_port: int
    callee_port: int
    hop_path: str
    pids: list[int]


def main() -> int:
    rounds = int(os.environ.get("SERVICE_BENCH_ROUNDS", "3"))
    seconds = int(os.environ.get("SERVICE_BENCH_SECONDS", "10"))
    connections = [int(c) for c in os.environ.get("SERVICE_BENCH_CONNECTIONS", "32,64").split(",")]
    endpoints = [e.strip() for e in os.environ.get("SERVICE_BENCH_ENDPOINTS", "hello,hop").split(",")]
    if not endpoints or any(e not in ENDPOINTS for e in endpoints):
        print(f"service benchmark: SERVICE_BENCH_ENDPOINTS must list some of {', '.join(ENDPOINTS)}")
        return 2
    wrk = ensure_wrk()
    if wrk is None:
        print("service benchmark: skipped, wrk is not installed and could not be installed "
              "(apt-get install wrk)")
        return 0
    anchor = Path(os.environ.get("EXPRESS_ANCHOR", REPO.parent / "shared" / "anchors" / "express"))
    with ExitStack() as stack:
        sides = [start_ours(stack, os.environ.get("SERVICE_BENCH_GUNICORN_ARGS", "").split())]
        if not (anchor / "server.js").is_file():
            print(f"service benchmark: no Express anchor at {anchor}; measuring ours only, "
                  "no comparison")
        elif shutil.which("node") is None or shutil.which("npm") is None:
            print("service benchmark: node/npm not installed; measuring ours only, no comparison")
        else:
            sides.append(start_express(stack, anchor))
        samplers = {side.name: RssSampler(side.pids) for side in sides}
        for sampler in samplers.values():
            stack.callback(sampler.stop)
            sampler.start()
        results = run_rounds(wrk, sides, connections, rounds, seconds, endpoints)
        peak_rss = {name: sampler.peak_mib for name, sampler in samplers.items()}
    report(results, peak_rss, connections, rounds, seconds, endpoints)
    return 0


def run_rounds(wrk, sides, connections, rounds, seconds, endpoints=ENDPOINTS):
    """results[(endpoint, connections, side)] -> list of WrkResult, one per round."""
    results: dict[tuple[str, int, str], list[WrkResult]] = {}
    for side in sides:  # warm-up: first connections, JIT, pools
        for endpoint in endpoints:
            run_wrk(wrk, url_for(side, endpoint), max(connections), 2)
    for conns in connections:
        for endpoint in endpoints:
            for round_number in range(rounds):
                # Alternate who goes first so neither side always gets the cooler machine.
                ordered = sides if round_number % 2 == 0 else list(reversed(sides))
                for side in ordered:
                    ticks = cpu_ticks(side.pids)
                    result = run_wrk(wrk, url_for(side, endpoint), conns, seconds)
                    result.cpu_us_per_request = ((cpu_ticks(side.pids) - ticks) * 1e6
                                                 / os.sysconf("SC_CLK_TCK") / max(result.requests, 1))
                    results.setdefault((endpoint, conns, side.name), []).append(result)
                    print(f"  {side.name:8} {endpoint:5} c={conns:<3} round {round_number + 1}: "
                          f"{result.requests_per_second:9.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                          f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}  "
                          f"CPU {result.cpu_us_per_request:5.0f} us/request", flush=True)
    return results


def report(results, peak_rss, connections, rounds, seconds, endpoints=ENDPOINTS) -> None:
    names = sorted({name for (_, _, name) in results}, key=lambda n: n != "ours")
    print(f"\nservice benchmark: medians of {rounds} rounds x {seconds} s, wrk -t{WRK_THREADS}, "
          f"loopback; hello = GET /, hop = ours GET /peers (one peer) vs Express GET /health")
    header = (f"{'endpoint':8} {'conns':>5} {'side':8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'errors':>7} {'CPU us/req':>8}")
    print(header)
    summary = []
    for endpoint in endpoints:
        for conns in connections:
            medians = {}
            for name in names:
                runs = results[(endpoint, conns, name)]
                medians[name] = WrkResult(
                    requests_per_second=statistics.median(r.requests_per_second for r in runs),
                    p50_ms=statistics.median(r.p50_ms for r in runs),
                    p99_ms=statistics.median(r.p99_ms for r in runs),
                    errors=sum(r.errors for r in runs),
                    requests=sum(r.requests for r in runs),
                    cpu_us_per_request=statistics.median(r.cpu_us_per_request for r in runs),
                )
                m = medians[name]
                print(f"{endpoint:8} {conns:>5} {name:8} {m.requests_per_second:9.0f} "
                      f"{m.p50_ms:8.2f} {m.p99_ms:8.2f} {m.errors:>7} {m.cpu_us_per_request:8.0f}")
            row = {"endpoint": endpoint, "connections": conns,
                   **{name: asdict(m) for name, m in medians.items()}}
            if "express" in medians:
                ours, express = medians["ours"], medians["express"]
                row["throughput_ratio"] = round(ours.requests_per_second / express.requests_per_second, 2)
                row["p99_ratio"] = round(ours.p99_ms / express.p99_ms, 2)
                print(f"{'':8} {'':>5} {'ratio':8} {row['throughput_ratio']:8.2f}x "
                      f"{'':>8} {row['p99_ratio']:7.2f}x  (ours/Express; p99 lower is better)")
            summary.append(row)
    rss_text = ", ".join(f"{name} {mib:.0f} MiB" for name, mib in peak_rss.items())
    print(f"peak RSS of each caller+callee pair (all processes): {rss_text}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rounds": rounds, "seconds": seconds, "rows": summary,
                                   "peak_rss_mib": peak_rss}, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(REPO)}")


def url_for(side: Side, endpoint: str) -> str:
    path = "/" if endpoint == "hello" else side.hop_path
    return f"http://{HOST}:{side.caller_port}{path}"


def run_wrk(wrk: str, url: str, connections: int, seconds: int) -> WrkResult:
    command = [wrk, f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s",
               f"--timeout={WRK_TIMEOUT}", "--latency", url]
    out = subprocess.run(command, capture_output=True, text=True, check=True,
                         timeout=seconds + 30).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> WrkResult:
    def latency(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if not match:
            raise RuntimeError(f"wrk output has no {label}% latency:\n{out}")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = 0
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return WrkResult(rps, latency("50"), latency("99"), errors, requests)


def ensure_wrk() -> str | None:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    print("service benchmark: installing wrk with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        if subprocess.run(command, env=env, stdout=subprocess.DEVNULL, timeout=300).returncode:
            return None
    return shutil.which("wrk")


def start_ours(stack: ExitStack, extra_args: list[str] = ()) -> Side:
    callee_port, caller_port = free_port(), free_port()
    gunicorn = [str(Path(sys.executable).parent / GUNICORN_COMMAND[0]), *GUNICORN_COMMAND[1:],
                *extra_args]
    base = {**os.environ, "PYTHONUNBUFFERED": "1"}
    callee = spawn(stack, gunicorn, REPO, {**base, "SERVICE_NAME": "server",
                                           "PORT": str(callee_port), "PEER_URLS": ""})
    caller = spawn(stack, gunicorn, REPO, {**base, "SERVICE_NAME": "client",
                                           "PORT": str(caller_port),
                                           "PEER_URLS": f"http://{HOST}:{callee_port}"})
    wait_until_up(caller_port, "/peers")
    return Side("ours", caller_port, callee_port, "/peers", [callee.pid, caller.pid])


def start_express(stack: ExitStack, anchor: Path) -> Side:
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="express-anchor-")))
    for name in ("package.json", "package-lock.json", "server.js"):
        shutil.copy(anchor / name, workdir / name)
    print("service benchmark: npm ci for the Express anchor", flush=True)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=workdir,
                   check=True, timeout=NPM_TIMEOUT_SECONDS, stdout=subprocess.DEVNULL)
    callee_port, caller_port = free_port(), free_port()
    base = dict(os.environ)
    callee = spawn(stack, ["node", "server.js"], workdir,
                   {**base, "SERVICE_NAME": "server", "PORT": str(callee_port),
                    "PEER_URL": f"http://{HOST}:{caller_port}/"})
    caller = spawn(stack, ["node", "server.js"], workdir,
                   {**base, "SERVICE_NAME": "client", "PORT": str(caller_port),
                    "PEER_URL": f"http://{HOST}:{callee_port}/"})
    wait_until_up(caller_port, "/health")
    return Side("express", caller_port, callee_port, "/health", [callee.pid, caller.pid])


def spawn(stack: ExitStack, command: list[str], cwd: Path, env: dict) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    stack.callback(stop, process)
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=35)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_up(port: int, path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answered 200 on {HOST}:{port}{path} "
                               f"within {START_TIMEOUT_SECONDS} s")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class RssSampler(threading.Thread):
    """Samples the summed RSS of some processes and all their descendants."""

    def __init__(self, root_pids: list[int]):
        super().__init__(daemon=True)
        self.root_pids = root_pids
        self.peak_mib = 0.0
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(0.25):
            total_kib = sum(rss_kib(pid) for pid in descendants(self.root_pids))
            self.peak_mib = max(self.peak_mib, total_kib / 1024)

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=2)


def descendants(roots: list[int]) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found = set(roots)
    grew = True
    while grew:
        new = {pid for pid, parent in parents.items() if parent in found and pid not in found}
        found |= new
        grew = bool(new)
    return found


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure_overrides() -> int:
    """Per-override savings of service/worker.py against pywsgi's own code (see docstring)."""
    import io
    import timeit

    from gevent import socket as gevent_socket
    from gevent.pywsgi import WSGIHandler, format_date_time
    from gunicorn.config import Config
    from gunicorn.glogging import Logger
    from gunicorn.workers.ggevent import PyWSGIHandler

    from service.worker import RequestHeaders, ServiceHandler, http_date

    def best_us(function, number=20000) -> float:
        return min(timeit.repeat(function, number=number, repeat=7)) / number * 1e6

    # The head our peer client sends (the hop's callee parses it; wrk's is similar).
    head = (b"Host: 127.0.0.1:8081\r\nUser-Agent: ecs-service-connect-kit-peers/1\r\n"
            b"Accept: application/json\r\nX-Request-Id: 0123456789abcdef0123456789abcdef\r\n\r\n")
    rows = [("request headers (MessageClass)",
             best_us(lambda: WSGIHandler.MessageClass(None, io.BytesIO(head), 0)),
             best_us(lambda: RequestHeaders.read(io.BytesIO(head)))),
            ("Date header (finalize_headers)", best_us(lambda: format_date_time(time.time())),
             best_us(http_date))]

    logger = Logger(Config())  # access log off, as in service/gunicorn.conf.py
    def handler(cls):
        made = object.__new__(cls)
        made.server = type("Server", (), {"log": logger})()
        made.time_start = made.time_finish = time.time()
        made.status, made.response_headers, made.response_length = b"200 OK", [], 0
        made.headers, made.environ = RequestHeaders.read(io.BytesIO(head)), {}
        return made
    rows.append(("access-log hook off (log_request)", best_us(handler(PyWSGIHandler).log_request),
                 best_us(handler(ServiceHandler).log_request)))

    writer_end, reader_end = gevent_socket.socketpair()
    body = b'{"service": "server", "message": "Hello from server"}'
    def respond(cls):
        made = object.__new__(cls)
        made.socket, made.code, made.request_version, made.result = writer_end, 200, "HTTP/1.1", [body]
        def one():
            made.status, made.provided_date, made.provided_content_length = b"200 OK", True, "53"
            made.response_headers = [(b"Content-Type", b"application/json"), (b"Content-Length", b"53")]
            made.response_length, made.response_use_chunked, made.headers_sent = 0, False, False
            made.write(body)
            reader_end.recv(65536)
        return one
    rows.append(("small response written and read (_write_with_headers, _sendall)",
                 best_us(respond(PyWSGIHandler), 5000), best_us(respond(ServiceHandler), 5000)))
    print("in one process, us per request (min of 7 repeats):")
    for name, pywsgi_us, ours_us in rows:
        print(f"  {name:66} pywsgi {pywsgi_us:6.2f}  ours {ours_us:6.2f}  saved {pywsgi_us - ours_us:6.2f}")

    rounds = int(os.environ.get("SERVICE_BENCH_ROUNDS", "3"))
    seconds = int(os.environ.get("SERVICE_BENCH_SECONDS", "6"))
    wrk = ensure_wrk()
    if wrk is None:
        print("end to end: skipped, no wrk")
        return 0
    with ExitStack() as stack:
        sides = [start_ours(stack),
                 replace(start_ours(stack, ["--worker-class", "benchmarks.service_bench.StockWorker"]),
                         name="stock")]
        results = run_rounds(wrk, sides, [64], rounds, seconds, ["hop"])
    worker, stock = (statistics.median(r.cpu_us_per_request for r in results[("hop", 64, name)])
                     for name in ("ours", "stock"))
    print(f"end to end, hop at 64 connections, CPU of caller+callee per hop (median of {rounds}):"
          f" worker {worker:.0f} us, every pywsgi speed override dropped {stock:.0f} us"
          f" ({(stock / worker - 1) * 100:+.0f}%)")
    return 0


def cpu_ticks(root_pids: list[int]) -> int:
    total = 0
    for pid in descendants(root_pids):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            continue
    return total


def _stock_worker():
    """service/worker.py's worker with its speed overrides of pywsgi dropped (the keep-alive
    bound, drain and fairness yield stay: they are behaviour, measured separately)."""
    from gevent.pywsgi import WSGIHandler
    from gunicorn.workers.ggevent import PyWSGIHandler

    from service.worker import ServiceHandler, ServiceWorker

    class StockHandler(ServiceHandler):
        MessageClass = WSGIHandler.MessageClass
        read_request = WSGIHandler.read_request
        finalize_headers = WSGIHandler.finalize_headers
        _write_with_headers = WSGIHandler._write_with_headers
        _sendall = WSGIHandler._sendall
        log_request = PyWSGIHandler.log_request

    return type("StockWorker", (ServiceWorker,), {"handler_class": StockHandler})


def __getattr__(name: str):
    # Built on first use: Gunicorn imports it by name in the `stock` processes only.
    if name == "StockWorker":
        return _stock_worker()
    raise AttributeError(name)


if __name__ == "__main__":
    if sys.argv[1:] == ["overrides"]:
        sys.exit(measure_overrides())
    sys.exit(main())
