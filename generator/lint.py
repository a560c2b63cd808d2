"""Lint every generated template in one process, and every params file against service.yaml.

cfn-lint's rule collection (its own rules plus ours in generator/rules) is built once
and run over each template, instead of paying cfn-lint's start-up per template.

Two things keep `lint` fast without linting less:

* **Parallel templates.** Once the rules are built, the templates are shared out over
  forked workers (one per CPU, largest files first), so the big template and the rest
  are linted at the same time. Each worker inherits the built rules; findings come back
  over a pipe and are merged in the order of the input paths, exactly as a serial run
  would return them. Where ``os.fork`` does not exist the templates are linted serially.
* **A content-addressed cache** (opt-in here, on by default in the CLI). A template's
  findings are stored under a key made of its bytes, its file suffix, cfn-lint's version,
  the bytes of every file in generator/rules, the regions, and any ``.cfnlintrc`` cfn-lint
  would read; change any of them and the template is linted again. When every template
  hits, cfn-lint is not even imported.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pickle
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable

from generator.lintrules import RULES_DIR
from generator.lintreport import Finding
from generator.paramscheck import check_params_file, service_contract

TEMPLATE_GLOB = "*.yaml"
SERVICE_TEMPLATE = "service.yaml"
# One region is enough: the templates use no region-specific resource types or values.
REGIONS = ["us-east-1"]
# Project-local and gitignored; the CLI's --no-cache bypasses it.
DEFAULT_CACHE_DIR = Path(".cache") / "lint"
# Bump when the cached payload or the meaning of a key changes.
CACHE_FORMAT = "lint-cache-1"
_CFNLINTRC_NAMES = (".cfnlintrc", ".cfnlintrc.yaml", ".cfnlintrc.yml")


def lint_directory(out_dir: Path, *, cache_dir: Path | None = None,
                   jobs: int | None = None,
                   prewarmed: "PrewarmedRules | None" = None) -> list[Finding]:
    """Lint out_dir/*.yaml and check out_dir/params/*.json against service.yaml.

    The params checks run in this process while the forked workers lint templates.
    `prewarmed` (see `PrewarmedRules`) lints in a process that built the rules earlier.
    """
    out_dir = Path(out_dir)
    templates = sorted(out_dir.glob(TEMPLATE_GLOB))
    service_template = out_dir / SERVICE_TEMPLATE

    def params_findings() -> list[Finding]:
        if not service_template.is_file():
            return []
        parameters, rules = service_contract(service_template)
        found: list[Finding] = []
        for params_file in sorted([*(out_dir / "params").glob("*.json"),
                                   *(out_dir / "params").glob("*/*.json")]):
            found.extend(check_params_file(params_file, parameters, rules))
        return found

    extra: list[Finding] = []
    findings = _lint(templates, cache_dir=cache_dir, jobs=jobs,
                     meanwhile=lambda: extra.extend(params_findings()), prewarmed=prewarmed)
    return findings + extra


def lint_templates(paths: Iterable[Path], *, cache_dir: Path | None = None,
                   jobs: int | None = None) -> list[Finding]:
    """cfn-lint (all its rules plus ours, REGIONS) over `paths`; findings in path order.

    `cache_dir=None` (the default) neither reads nor writes a cache; `jobs=1` lints
    serially in this process; `jobs=None` uses one worker per available CPU.
    """
    return _lint(list(paths), cache_dir=cache_dir, jobs=jobs)


# --- templates -------------------------------------------------------------------------


def _lint(paths: list[Path], *, cache_dir: Path | None, jobs: int | None,
          meanwhile: Callable[[], None] | None = None,
          prewarmed: "PrewarmedRules | None" = None) -> list[Finding]:
    paths = [Path(p) for p in paths]
    contents = [p.read_bytes() for p in paths]
    meanwhile = _once(meanwhile)
    results: dict[int, list[Finding]] = {}
    cache = LintCache(cache_dir) if cache_dir is not None else None
    keys: list[str] = []
    if cache is not None:
        keys = [cache.key(path, data) for path, data in zip(paths, contents)]
        for index, (path, key) in enumerate(zip(paths, keys)):
            hit = cache.get(key, path)
            if hit is not None:
                results[index] = hit
    todo = [index for index in range(len(paths)) if index not in results]
    if todo:
        work = ([paths[i] for i in todo], [len(contents[i]) for i in todo], _jobs(jobs, len(todo)))
        linted = prewarmed.lint(*work, meanwhile) if prewarmed is not None else None
        if linted is None:  # no prewarmed process, or it failed: build the rules here
            linted = _lint_uncached(*work, meanwhile)
        for index, found in zip(todo, linted):
            results[index] = found
            if cache is not None:
                cache.put(keys[index], found)
    elif meanwhile is not None:
        meanwhile()
    return [finding for index in range(len(paths)) for finding in results[index]]


def _once(work: Callable[[], None] | None) -> Callable[[], None] | None:
    if work is None:
        return None
    done = []

    def run() -> None:
        if not done:
            done.append(True)
            work()

    return run


def _jobs(requested: int | None, work: int) -> int:
    if requested is None:
        try:
            requested = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            requested = os.cpu_count() or 1
    if not hasattr(os, "fork"):
        requested = 1
    return max(1, min(requested, work))


def _build_rules():
    # cfn-lint takes most of a second to import; `generate` alone never pays for it.
    from cfnlint.config import ConfigMixIn
    from cfnlint.core import get_rules

    return get_rules([str(RULES_DIR)], [], []), ConfigMixIn(regions=REGIONS)


def _lint_one(path: Path, rules, config) -> list[Finding]:
    from cfnlint.runner.template.runner import run_template_by_file_path

    return [
        Finding(
            file=str(path),
            line=match.linenumber,
            column=match.columnnumber,
            rule=match.rule.id,
            level=match.rule.severity,
            message=match.message,
        )
        for match in run_template_by_file_path(str(path), config, rules, False)
    ]


def _partition(sizes: list[int], jobs: int) -> list[list[int]]:
    """Longest-processing-time first: biggest file to the least loaded share.

    Share 0 is the lightest; this process lints it, then does `meanwhile` work.
    """
    shares: list[list[int]] = [[] for _ in range(jobs)]
    loads = [0] * jobs
    for index in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        target = loads.index(min(loads))
        shares[target].append(index)
        loads[target] += sizes[index] + 1
    order = sorted(range(jobs), key=lambda j: loads[j])
    return [sorted(shares[j]) for j in order if shares[j]]


def _lint_uncached(paths: list[Path], sizes: list[int], jobs: int,
                   meanwhile: Callable[[], None] | None, built=None) -> list[list[Finding]]:
    rules, config = built if built is not None else _build_rules()
    shares = _partition(sizes, jobs) if jobs > 1 else [list(range(len(paths)))]
    results: list[list[Finding] | None] = [None] * len(paths)
    children = []
    for share in shares[1:]:
        children.append((share, _fork_worker([paths[i] for i in share], rules, config)))
    for index in shares[0]:
        results[index] = _lint_one(paths[index], rules, config)
    if meanwhile is not None:
        meanwhile()
    for share, (pid, reader) in children:
        payload = _collect(pid, reader)
        if payload is None:  # the worker died: lint its share here, errors and all
            payload = [_lint_one(paths[i], rules, config) for i in share]
        for index, found in zip(share, payload):
            results[index] = found
    return results  # type: ignore[return-value]


def _fork_worker(paths: list[Path], rules, config) -> tuple[int, int]:
    reader, writer = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the worker: lint, send the pickled findings, exit without cleanup
        status = 0
        try:
            os.close(reader)
            payload = pickle.dumps([_lint_one(path, rules, config) for path in paths])
            with os.fdopen(writer, "wb") as stream:
                stream.write(payload)
        except BaseException:  # noqa: BLE001 - the parent re-lints and reports
            status = 1
        finally:
            os._exit(status)
    os.close(writer)
    return pid, reader


def _collect(pid: int, reader: int) -> list[list[Finding]] | None:
    with os.fdopen(reader, "rb") as stream:
        data = stream.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not data:
        return None
    return pickle.loads(data)  # noqa: S301 - our own forked child wrote it


class PrewarmedRules:
    """Import cfn-lint and build its rules in a forked process *now*, lint later.

    `generate --lint` starts this before it renders, so the second CPU pays cfn-lint's
    import and rule building (most of a second) while the first one renders templates.
    `lint()` hands the templates to that process, which lints them (forking its own
    workers) and sends the findings back. Nothing is linted that would not be anyway;
    if the process fails, `lint()` returns None and the caller lints in-process.
    `close()` stops the process if it was never used (every template was a cache hit).
    """

    def __init__(self) -> None:
        self.pid: int | None = None
        if not hasattr(os, "fork"):
            return
        request_r, self._request_w = os.pipe()
        self._response_r, response_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                os.close(self._request_w)
                os.close(self._response_r)
                status = self._serve(request_r, response_w)
            except BaseException:  # noqa: BLE001 - the parent lints in-process instead
                status = 1
            finally:
                os._exit(status)
        os.close(request_r)
        os.close(response_w)
        self.pid = pid

    @staticmethod
    def _serve(request_r: int, response_w: int) -> int:
        built = _build_rules()
        with os.fdopen(request_r, "rb") as stream:
            request = stream.read()
        if not request:  # closed unused
            return 0
        paths, sizes, jobs = pickle.loads(request)  # noqa: S301 - from our parent
        results = _lint_uncached(paths, sizes, jobs, None, built)
        with os.fdopen(response_w, "wb") as stream:
            stream.write(pickle.dumps(results))
        return 0

    def lint(self, paths: list[Path], sizes: list[int], jobs: int,
             meanwhile: Callable[[], None] | None) -> list[list[Finding]] | None:
        if self.pid is None:
            return None
        try:
            with os.fdopen(self._request_w, "wb") as stream:
                stream.write(pickle.dumps((paths, sizes, jobs)))
        except OSError:  # the process died (BrokenPipeError): reap it, lint here
            results = None
            os.close(self._response_r)
            os.waitpid(self.pid, 0)
        else:
            if meanwhile is not None:
                meanwhile()
            results = _collect(self.pid, self._response_r)
        self.pid = None
        return results

    def close(self) -> None:
        if self.pid is None:
            return
        import signal

        for fd in (self._request_w, self._response_r):
            try:
                os.close(fd)
            except OSError:  # already closed by lint()
                pass
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        self.pid = None

    def __enter__(self) -> "PrewarmedRules":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- cache -----------------------------------------------------------------------------


class LintCache:
    """Findings per template, content-addressed; see the module docstring for the key."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._fingerprint: bytes | None = None

    def fingerprint(self) -> bytes:
        """Everything but the template that decides cfn-lint's findings."""
        if self._fingerprint is None:
            digest = hashlib.sha256(CACHE_FORMAT.encode())
            spec = importlib.util.find_spec("cfnlint")  # locates, does not import
            locations = list(spec.submodule_search_locations or []) if spec else []
            for location in locations:
                version = Path(location, "version.py")
                digest.update(b"cfnlint\0" + (version.read_bytes() if version.is_file() else b""))
            for rule_file in sorted(Path(RULES_DIR).rglob("*.py")):
                digest.update(b"rule\0" + rule_file.name.encode() + b"\0" + rule_file.read_bytes())
            digest.update(b"regions\0" + json.dumps(REGIONS).encode())
            for folder in (Path.home(), Path.cwd()):
                for name in _CFNLINTRC_NAMES:
                    config = folder / name
                    if config.is_file():
                        digest.update(b"cfnlintrc\0" + str(config).encode() + b"\0"
                                      + config.read_bytes())
            self._fingerprint = digest.digest()
        return self._fingerprint

    def key(self, path: Path, content: bytes) -> str:
        digest = hashlib.sha256(self.fingerprint())
        digest.update(b"suffix\0" + path.suffix.encode() + b"\0")
        digest.update(content)
        return digest.hexdigest()

    def _entry(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str, path: Path) -> list[Finding] | None:
        try:
            stored = json.loads(self._entry(key).read_text(encoding="utf-8"))
            return [Finding(file=str(path), **item) for item in stored["findings"]]
        except (OSError, ValueError, TypeError, KeyError):
            return None  # missing or unreadable: lint again

    def put(self, key: str, findings: list[Finding]) -> None:
        items = [{k: v for k, v in asdict(f).items() if k != "file"} for f in findings]
        entry = self._entry(key)
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump({"findings": items}, stream)
            os.replace(temp, entry)
        except OSError:
            pass  # a cache that cannot be written only costs time
