"""`python -m generator` (also installed as `ecs-connect`).

Exit codes: 0 success; 1 lint findings or stale templates (or a failed AWS check);
2 bad input (topology, parameters, environment, credentials).
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

from generator.topology import DEFAULT_TOPOLOGY, TopologyError

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_OUT = "templates"


class UsageError(Exception):
    """Bad input the user can fix; str() is the one-line message."""


def _load(args: argparse.Namespace):
    """topology.yaml; with --env (plan, sam-overrides), that environment's topology."""
    from generator import topology

    loaded = topology.load(args.topology)
    if not hasattr(args, "env"):
        return loaded
    return topology.select(loaded, args.env)


def cmd_generate(args: argparse.Namespace) -> int:
    if args.lint and args.jobs != 1:
        from generator import lint

        # cfn-lint imports and builds its rules on the other CPU while this one renders.
        with lint.PrewarmedRules() as prewarmed:
            return _generate(args, prewarmed)
    return _generate(args, None)


def _generate(args: argparse.Namespace, prewarmed) -> int:
    from generator import quotacheck, render, samconfig

    topology = _load(args)
    files, documents = render.render_with_documents(topology)
    # Every quota and every params-file check before anything is written or compared.
    quotacheck.check(topology, files, documents)
    out_dir = Path(args.out)
    # samconfig.toml goes beside the templates directory: the repository root by default.
    root_dir = out_dir.absolute().parent
    root_files = {samconfig.FILE: samconfig.render(topology, out_dir.absolute().name)}
    if args.check:
        stale = render.stale_files(out_dir, files)
        stale_root = render.stale_files(root_dir, root_files, orphans=False)
        for relative in stale:
            print(f"{out_dir / relative}: out of date", file=sys.stderr)
        for relative in stale_root:
            print(f"{root_dir / relative}: out of date", file=sys.stderr)
        if stale or stale_root:
            print("run `python -m generator generate` (or `make templates`) and commit the "
                  "result", file=sys.stderr)
            return EXIT_FINDINGS
        print(f"{out_dir}: {len(files)} file(s) up to date")
        return cmd_lint(args, prewarmed) if args.lint else EXIT_OK
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: --out must be a directory")
    try:
        changed = render.write(out_dir, files)
        root_changed = render.write(root_dir, root_files, orphans=False)
    except OSError as err:
        raise UsageError(f"{err.filename or out_dir}: cannot write: {err.strerror or err}") from None
    for relative in sorted(files):
        state = "written" if relative in changed else "unchanged"
        print(f"{out_dir / relative}  ({state})")
    for relative in sorted(root_files):
        state = "written" if relative in root_changed else "unchanged"
        print(f"{root_dir / relative}  ({state})")
    for relative in changed:
        if relative not in files:
            print(f"{out_dir / relative}  (removed: nothing in the topology makes it)")
    # --lint: one process, so Python and the generator start once for both steps.
    return cmd_lint(args, prewarmed) if args.lint else EXIT_OK


def cmd_lint(args: argparse.Namespace, prewarmed=None) -> int:
    from generator import lint, lintreport

    out_dir = Path(args.out)
    service_template = out_dir / lint.SERVICE_TEMPLATE
    if not service_template.is_file():
        raise UsageError(f"{service_template}: not found; run `python -m generator generate` first")
    linted = [str(p) for p in sorted(out_dir.glob(lint.TEMPLATE_GLOB))]
    linted += [str(p) for p in sorted([*(out_dir / "params").glob("*.json"),
                                       *(out_dir / "params").glob("*/*.json")])]
    cache_dir = None if args.no_cache else lint.DEFAULT_CACHE_DIR
    findings = lint.lint_directory(out_dir, cache_dir=cache_dir, jobs=args.jobs,
                                   prewarmed=prewarmed)
    report = lintreport.FORMATS[args.format](findings, linted)
    if args.output:
        try:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            Path(args.output).write_text(report, encoding="utf-8")
        except OSError as err:
            raise UsageError(f"{args.output}: cannot write the report: "
                             f"{err.strerror or err}") from None
        print(lintreport.format_text(findings, linted), end="")
    else:
        print(report, end="")
    failing = [f for f in findings if f.level in ("error", "warning")]
    return EXIT_FINDINGS if failing else EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    from generator import plan

    topology = _load(args)
    deploy_plan = plan.build(topology)
    if args.format == "mermaid":
        print(plan.mermaid(topology), end="")
    else:
        print(plan.describe(topology, deploy_plan), end="")
        print("\n```mermaid")
        print(plan.mermaid(topology), end="")
        print("```")
    return EXIT_OK


def cmd_sam_overrides(args: argparse.Namespace) -> int:
    """samconfig.toml's parameter_overrides for one stack plus the deploy-time values given,
    as one --parameter-overrides argument (SAM CLI replaces the file's list with the
    command line's instead of merging: aws/aws-sam-cli#2380)."""
    from generator import samconfig

    topology = _load(args)
    entries = {entry["name"]: entry for entry in samconfig.stacks(topology)}
    if args.stack not in entries:
        raise UsageError(f"sam-overrides: {args.stack}: not a stack of {topology.source} "
                         f"(stacks: {', '.join(entries)})")
    values = dict(entries[args.stack]["parameters"])
    for assignment in args.values:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise UsageError(f"sam-overrides: {assignment!r}: expected KEY=VALUE")
        values[key] = value
    missing = [name for name in samconfig.deploy_time_parameters(topology, args.stack)
               if name not in values]
    if missing:
        raise UsageError(f"sam-overrides: {args.stack} needs {', '.join(missing)} "
                         "(deploy-time values: see the README's \"SAM users\")")
    print(" ".join(samconfig.overrides(values)))
    return EXIT_OK


def cmd_check_upgrade(args: argparse.Namespace) -> int:
    from generator import upgrade

    if args.no_baseline is not None:
        from generator.ops.cli import _guarded

        return _guarded(_check_missing_baseline)(args)

    try:
        report, old_files, new_files = upgrade.plan_from(args.source, args.out,
                                                         _upgrade_environment(args))
    except upgrade.UpgradeInputError as err:
        raise UsageError(f"check-upgrade: {err}") from None
    text = upgrade.format_report(report)
    if args.format != "text" or args.output:
        from generator import upgradefacts, upgradereport

        rendered = text if args.format == "text" else upgradereport.FORMATS[args.format](
            upgradefacts.approval(report, old_files, new_files,
                                  {"from": args.source, "to": str(args.out)}))
        if args.output:
            _write_report(args.output, rendered)
        else:
            text = rendered
    print(text, end="")
    return EXIT_FINDINGS if report.failures else EXIT_OK


def _write_report(path: str, text: str) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    except OSError as err:
        raise UsageError(f"{path}: cannot write the report: {err.strerror or err}") from None


def _upgrade_environment(args: argparse.Namespace):
    """The environment the model deploys into: --env's, read from topology.yaml (its
    network, namespace and params/<env>/), or the model's default without environments."""
    from generator import topology, upgrade

    if args.env is None and not Path(args.topology).is_file():
        return upgrade.Environment()  # a templates directory is all the model needs
    loaded = topology.load(args.topology)
    if args.env is None and not loaded.environments:
        return upgrade.Environment()
    selected = topology.select(loaded, args.env)
    network = selected.environment.network
    return upgrade.Environment(
        vpc_id=network.vpc_id, private_subnets=",".join(network.private_subnets),
        public_subnets=",".join(network.public_subnets), name=selected.environment.name,
        project=selected.project_app, namespace=selected.namespace)


def _check_missing_baseline(args: argparse.Namespace) -> int:
    from generator import topology
    from generator.ops.baseline import missing_baseline
    from generator.ops.cli import _aws

    selected = topology.select(topology.load(args.topology), args.env)
    aws = _aws(args, selected)
    line, ok = missing_baseline(aws.client("cloudformation"), selected, args.no_baseline)
    print(line, file=sys.stdout if ok else sys.stderr)
    return EXIT_OK if ok else EXIT_FINDINGS


class _OneLineErrorParser(argparse.ArgumentParser):
    """A bad flag is one line, like every other bad input (the usage is one --help away)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see --help)\n")


def parser() -> argparse.ArgumentParser:
    top = _OneLineErrorParser(
        prog="python -m generator",
        description="topology.yaml -> linted CloudFormation for ECS Service Connect",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_topology(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--topology", default=DEFAULT_TOPOLOGY, metavar="FILE",
                         help=f"topology file (default: {DEFAULT_TOPOLOGY})")
        return sub

    from generator.ops.cli import _with_env

    generate = with_topology(commands.add_parser(
        "generate", help="write templates/ from the topology"))
    generate.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                          help=f"output directory (default: {DEFAULT_OUT}); samconfig.toml "
                               "is written beside it, in its parent directory")
    generate.add_argument("--check", action="store_true",
                          help="write nothing; exit 1 if the files on disk are stale")
    generate.add_argument("--lint", action="store_true",
                          help="then lint, in the same process (what `lint` does; exit 1 on "
                               "findings)")
    _lint_options(generate, with_format=False)
    generate.set_defaults(handler=cmd_generate)

    lint = commands.add_parser("lint", help="cfn-lint the templates and check the params files")
    lint.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                      help=f"directory holding the templates (default: {DEFAULT_OUT})")
    _lint_options(lint, with_format=True)
    lint.set_defaults(handler=cmd_lint)

    plan = with_topology(commands.add_parser(
        "plan", help="deploy order (callees before callers) and a Mermaid diagram"))
    plan.add_argument("--format", choices=["text", "mermaid"], default="text")
    _with_env(plan)
    plan.set_defaults(handler=cmd_plan)

    sam = with_topology(commands.add_parser(
        "sam-overrides", help="one stack's parameters for `sam deploy --config-env STACK "
                              "--parameter-overrides ...`, with the deploy-time values given"))
    sam.add_argument("stack", metavar="STACK", help="a stack name, as in samconfig.toml")
    sam.add_argument("values", nargs="*", metavar="KEY=VALUE",
                     help="deploy-time values, e.g. ImageUri=... Subnets=subnet-a,subnet-b")
    _with_env(sam)
    sam.set_defaults(handler=cmd_sam_overrides)

    check = commands.add_parser(
        "check-upgrade", help="what deploying these templates over earlier ones does, and "
                              "the failures it predicts (exit 1)")
    baseline = check.add_mutually_exclusive_group(required=True)
    baseline.add_argument("--from", dest="source", metavar="REF_OR_DIR",
                          help="the templates deployed now: a directory, or a git ref")
    baseline.add_argument("--no-baseline", metavar="WHERE",
                          help="there are none (at WHERE, e.g. s3://bucket/deployed/"
                               "templates/): exit 0 if the app's cluster stack does not "
                               "exist (a first deploy), else exit 1 with one line")
    with_topology(check)
    from generator.ops.cli import _with_aws
    _with_aws(check)
    check.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                       help=f"the templates to deploy (default: {DEFAULT_OUT})")
    check.add_argument("--format", choices=["text", "markdown", "html"], default="text",
                       help="text (default), or the approval report: markdown, or one "
                            "self-contained HTML file")
    check.add_argument("--output", metavar="FILE",
                       help="write the report to FILE and the text summary to stdout")
    _with_env(check)
    check.set_defaults(handler=cmd_check_upgrade)

    _register_operations(commands, with_topology)
    return top


def _lint_options(sub: argparse.ArgumentParser, with_format: bool) -> None:
    if with_format:
        sub.add_argument("--format", choices=["text", "json", "junit"], default="text")
        sub.add_argument("--output", metavar="FILE",
                         help="write the report to FILE and a text summary to stdout")
    else:
        sub.set_defaults(format="text", output=None)
    sub.add_argument("--no-cache", action="store_true",
                     help="lint every template even if an identical one was linted before "
                          "(the cache lives in .cache/lint/)")
    sub.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                     help="lint templates in N processes (default: one per CPU; 1 = serial)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _register_operations(commands, with_topology) -> None:
    """The boto3 commands (bootstrap, deploy, verify, status) live in generator.ops."""
    import importlib.util

    if importlib.util.find_spec("generator.ops") is None:
        return
    if importlib.util.find_spec("generator.ops.cli") is None:
        return
    from generator.ops import cli as ops_cli

    ops_cli.register(commands, with_topology)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except (TopologyError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# 128 + SIGPIPE, what a shell reports for a writer its reader left (`yes | head`): a script
# with `set -o pipefail` can tell cut-short output from a complete run.
EXIT_BROKEN_PIPE = 141


def quiet_when_the_reader_leaves(entry):
    """Wrap a CLI entry point: `... | head` ends with EXIT_BROKEN_PIPE, not a traceback."""

    @functools.wraps(entry)
    def run(*args, **kwargs):
        try:
            try:
                return entry(*args, **kwargs)
            finally:
                # Also before a SystemExit (argparse's --help): the reader may leave before
                # the buffered output goes out.
                sys.stdout.flush()
        except BrokenPipeError:
            # As the Python docs advise (signal module, "Note on SIGPIPE"): stdout now points
            # at devnull, so the interpreter's own flush at exit cannot fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_BROKEN_PIPE

    return run


main = quiet_when_the_reader_leaves(main)


if __name__ == "__main__":
    sys.exit(main())
