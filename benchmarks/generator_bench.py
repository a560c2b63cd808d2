"""Generator benchmark: the whole `generate + lint` CLI against one plain cfn-lint run.

Everything runs as fresh processes, as a user runs them, in one interleaved loop: every
round runs every variant once (in a rotated order, so no variant always goes first), and
the script prints the median, min and max over the rounds. It prints and records
(benchmarks/results/generator.json); it never asserts.

Variants, for the default topology (2 services) and for a generated large topology
(default: benchmarks.topologies.layered_topology(300), the scale tests' 300 services,
about 1,200 call edges, a hub called by 55):
  two commands, cold   `python -m generator generate` then `python -m generator lint --no-cache`
  one command, cold    `python -m generator generate --lint --no-cache`
  one command, serial  the same with `--jobs 1` (what the fork-parallel lint saves)
  one command, warm    `python -m generator generate --lint` with the lint cache already
                       holding these templates: NOT the headline, shown separately
and once: `cfn-lint templates/service.yaml` (the plain CLI, one template).

Cold = no lint cache; the output directory is deleted before each run, so `generate`
writes every file. The targets are judged on cold figures only.

Knobs: GENERATOR_BENCH_ROUNDS (default 7), GENERATOR_BENCH_SERVICES (default 300),
GENERATOR_BENCH_TOPOLOGY (layered, the default, or legacy: the earlier acyclic 0-3 fan-out
generator), GENERATOR_BENCH_BUDGET_SECONDS (default 420: no new round starts after that).
"""
from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import topologies

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "generator.json"
PYTHON = sys.executable
CFN_LINT = str(Path(sys.executable).with_name("cfn-lint"))
RUN_TIMEOUT_SECONDS = 120

TARGET_SECONDS = 1.0
TARGET_SCALE = 4.0        # large topology cold <= 4x the default topology cold (issue 9)
TARGET_VS_CFN_LINT = 1.2  # default topology cold <= 1.2x one plain cfn-lint run
TOPOLOGIES = {
    "layered": lambda services: topologies.layered_topology(services),
    "legacy": lambda services: topologies.big_topology(services),
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(argv: list[str], cwd: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_SECONDS)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} (in {cwd}) exited {done.returncode}:\n"
                           + done.stdout.decode(errors="replace")[-2000:])
    return elapsed


class Case:
    """One topology in its own directory (its own out/ and .cache/)."""

    def __init__(self, root: Path, name: str, topology_text: str):
        self.dir = root / name
        self.dir.mkdir()
        (self.dir / "topology.yaml").write_text(topology_text, encoding="utf-8")
        self.out = self.dir / "out"
        self.gen = [PYTHON, "-m", "generator", "generate", "--topology", "topology.yaml",
                    "--out", "out"]
        self.lint = [PYTHON, "-m", "generator", "lint", "--out", "out"]

    def fresh(self) -> None:
        shutil.rmtree(self.out, ignore_errors=True)

    def two_commands_cold(self) -> float:
        self.fresh()
        return _run(self.gen, self.dir) + _run(self.lint + ["--no-cache"], self.dir)

    def one_command_cold(self) -> float:
        self.fresh()
        return _run(self.gen + ["--lint", "--no-cache"], self.dir)

    def one_command_serial(self) -> float:
        self.fresh()
        return _run(self.gen + ["--lint", "--no-cache", "--jobs", "1"], self.dir)

    def one_command_warm(self) -> float:
        # Cache primed by the previous run of this variant (or the priming run below).
        return _run(self.gen + ["--lint"], self.dir)

    def prime(self) -> None:
        self.fresh()
        _run(self.gen + ["--lint"], self.dir)


def _stats(samples: list[float]) -> dict:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "runs": len(samples)}


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> int:
    rounds = int(os.environ.get("GENERATOR_BENCH_ROUNDS", "7"))
    services = int(os.environ.get("GENERATOR_BENCH_SERVICES", "300"))
    shape = os.environ.get("GENERATOR_BENCH_TOPOLOGY", "layered")
    if shape not in TOPOLOGIES:
        print(f"GENERATOR_BENCH_TOPOLOGY: {shape!r} is not one of {', '.join(TOPOLOGIES)}",
              file=sys.stderr)
        return 2
    budget = float(os.environ.get("GENERATOR_BENCH_BUDGET_SECONDS", "420"))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    cfn_lint_version = subprocess.run([CFN_LINT, "--version"], capture_output=True,
                                      text=True).stdout.strip()
    service_template = REPO / "templates" / "service.yaml"
    print(f"machine: {cpus} CPU(s), {platform.machine()}, Python {platform.python_version()}, "
          f"{cfn_lint_version}; load average at start: {_load()}")
    print(f"{rounds} interleaved round(s); fresh processes; times in seconds; large topology: "
          f"{shape}, {services} services")

    with tempfile.TemporaryDirectory(prefix="generator-bench-") as tmp:
        root = Path(tmp)
        default = Case(root, "default", (REPO / "topology.yaml").read_text(encoding="utf-8"))
        big = Case(root, f"services{services}",
                   topologies.to_yaml(TOPOLOGIES[shape](services)))
        for case in (default, big):  # warm the OS file cache and .pyc files; check it works
            case.prime()
        variants = {
            "default: two commands, cold": default.two_commands_cold,
            "default: one command, cold": default.one_command_cold,
            "default: one command, serial, cold": default.one_command_serial,
            "default: one command, warm cache": default.one_command_warm,
            f"{services} services: two commands, cold": big.two_commands_cold,
            f"{services} services: one command, cold": big.one_command_cold,
            f"{services} services: one command, serial, cold": big.one_command_serial,
            f"{services} services: one command, warm cache": big.one_command_warm,
            "plain cfn-lint templates/service.yaml": lambda: _run(
                [CFN_LINT, str(service_template)], REPO),
        }
        samples: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        started = time.perf_counter()
        for index in range(rounds):
            if index and time.perf_counter() - started > budget:
                print(f"time budget of {budget:.0f} s reached after {index} round(s)")
                break
            order = names[index % len(names):] + names[:index % len(names)]
            for name in order:
                if "warm" in name:  # the cold variants delete out/; re-create it, cache kept
                    (default if name.startswith("default") else big).prime()
                cpu_before = _children_cpu()
                samples[name].append(variants[name]())
                cpu[name].append(_children_cpu() - cpu_before)
            print(f"  round {index + 1}/{rounds} done ({time.perf_counter() - started:.0f} s)",
                  flush=True)
        sizes = {path.name: path.stat().st_size for path in sorted(big.out.glob("*.yaml"))}

    stats = {name: _stats(values) for name, values in samples.items() if values}
    for name in stats:
        stats[name]["cpu_median"] = statistics.median(cpu[name])
    width = max(map(len, stats))
    print("\nwall-clock seconds; cpu = user+sys of all processes of the variant (median)")
    print(f"{'variant':<{width}}  median     min     max     cpu")
    for name, s in stats.items():
        marker = "   (warm: cache hit, not the headline)" if "warm" in name else ""
        print(f"{name:<{width}}  {s['median']:6.3f}  {s['min']:6.3f}  {s['max']:6.3f}  "
              f"{s['cpu_median']:6.3f}{marker}")
    print(f"load average at end: {_load()}; {services}-service template sizes: {sizes}")

    cfn = stats["plain cfn-lint templates/service.yaml"]["median"]
    verdicts = []
    print("\ntargets (COLD figures, medians):")
    for form in ("two commands", "one command"):
        small = stats[f"default: {form}, cold"]["median"]
        large = stats[f"{services} services: {form}, cold"]["median"]
        checks = [
            (f"{form}: default generate+lint < {TARGET_SECONDS:.1f} s",
             small, small < TARGET_SECONDS, f"{small:.3f} s"),
            (f"{form}: {services} services <= {TARGET_SCALE}x default",
             large / small, large / small <= TARGET_SCALE, f"{large / small:.2f}x"),
            (f"{form}: default <= {TARGET_VS_CFN_LINT}x plain cfn-lint ({cfn:.3f} s)",
             small / cfn, small / cfn <= TARGET_VS_CFN_LINT, f"{small / cfn:.2f}x"),
        ]
        for label, value, met, shown in checks:
            verdicts.append({"target": label, "value": value, "met": met})
            print(f"  {'MET    ' if met else 'NOT MET'}  {label}: {shown}")
    # On a shared or busy machine the wall-clock ratios move with the load; CPU time
    # (user+sys of every process of the variant) moves much less. Information only.
    cfn_cpu = stats["plain cfn-lint templates/service.yaml"]["cpu_median"]
    print("same ratios on CPU time (user+sys medians; not the targets):")
    for form in ("two commands", "one command"):
        small_cpu = stats[f"default: {form}, cold"]["cpu_median"]
        large_cpu = stats[f"{services} services: {form}, cold"]["cpu_median"]
        print(f"  {form}: {services} services / default {large_cpu / small_cpu:.2f}x; "
              f"default / plain cfn-lint {small_cpu / cfn_cpu:.2f}x")
    warm_small = stats.get("default: one command, warm cache")
    warm_large = stats.get(f"{services} services: one command, warm cache")
    if warm_small and warm_large:
        print("warm cache, for information only (unchanged templates are not re-linted): "
              f"default {warm_small['median']:.3f} s ({warm_small['median'] / cfn:.2f}x cfn-lint), "
              f"{services} services {warm_large['median']:.3f} s "
              f"({warm_large['median'] / warm_small['median']:.2f}x default warm)")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "cpus": cpus, "python": platform.python_version(), "cfn_lint": cfn_lint_version,
        "rounds": rounds, "services": services, "stats": stats, "targets": verdicts,
    }, indent=2) + "\n", encoding="utf-8")
    print(f"recorded in {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
