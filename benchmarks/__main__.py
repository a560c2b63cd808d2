"""`python -m benchmarks [generator|service|deploy ...]`: run the named suites (default: all)."""
import importlib
import sys

SUITES = {
    "generator": "benchmarks.generator_bench",
    "service": "benchmarks.service_bench",
    "deploy": "benchmarks.deploy_bench",
}


def main(argv: list[str]) -> int:
    names = argv or list(SUITES)
    unknown = [name for name in names if name not in SUITES]
    if unknown:
        print(f"benchmarks: unknown suite {unknown[0]!r} (known: {', '.join(SUITES)})", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        print(f"== {name} benchmark ==", flush=True)
        status |= importlib.import_module(SUITES[name]).main() or 0
    return status


if __name__ == "__main__":
    from generator.cli import quiet_when_the_reader_leaves

    sys.exit(quiet_when_the_reader_leaves(main)(sys.argv[1:]))
