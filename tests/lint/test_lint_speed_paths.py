"""The fast paths of `generator.lint` (forked workers, the content-addressed cache) must
return exactly what a plain serial, uncached run returns. No timings here: speed lives in
`python -m benchmarks generator`."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from generator import cli, lint

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"

# A custom rule's error (E9005: the container port opened to a CIDR) planted in the
# service template.
PLANTED_RESOURCE = """
  PlantedCidrIngress:
    Type: AWS::EC2::SecurityGroupIngress
    Properties:
      GroupId: sg-0123456789abcdef0
      IpProtocol: tcp
      FromPort: !Ref ContainerPort
      ToPort: !Ref ContainerPort
      CidrIp: 0.0.0.0/0
"""


def _plant(text: str) -> str:
    marker = "\nResources:\n"
    assert marker in text
    return text.replace(marker, marker + PLANTED_RESOURCE.lstrip("\n"), 1)


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """A copy of the committed templates/ with one error planted in service.yaml."""
    out = tmp_path / "templates"
    shutil.copytree(TEMPLATES, out)
    service = out / "service.yaml"
    service.write_text(_plant(service.read_text(encoding="utf-8")), encoding="utf-8")
    return out


def _templates(out: Path) -> list[Path]:
    return sorted(out.glob("*.yaml"))


def _spy_on_linting(monkeypatch) -> list[str]:
    """Record every template that reaches cfn-lint (serial path: jobs=1)."""
    linted: list[str] = []
    real = lint._lint_one

    def spy(path, rules, config):
        linted.append(Path(path).name)
        return real(path, rules, config)

    monkeypatch.setattr(lint, "_lint_one", spy)
    return linted


def test_planted_error_is_found(tree: Path):
    findings = lint.lint_templates(_templates(tree), jobs=1)
    assert any(f.rule == "E9005" and f.file.endswith("service.yaml") for f in findings)


def test_parallel_gives_the_same_findings_as_serial(tree: Path):
    paths = _templates(tree)
    serial = lint.lint_templates(paths, jobs=1)
    parallel = lint.lint_templates(paths, jobs=2)
    assert serial, "the planted error must produce findings"
    assert parallel == serial
    assert lint.lint_templates(paths, jobs=8) == serial  # more jobs than templates


def test_parallel_keeps_the_order_of_the_input_paths(tree: Path):
    paths = list(reversed(_templates(tree)))
    files = [f.file for f in lint.lint_templates(paths, jobs=2)]
    order = [str(p) for p in paths]
    assert files == sorted(files, key=order.index)


def test_lint_directory_parallel_equals_serial_with_params(tree: Path):
    params = tree / "params" / "server.json"
    document = json.loads(params.read_text())
    document["Parameters"]["Bogus"] = "1"
    params.write_text(json.dumps(document, indent=2))
    serial = lint.lint_directory(tree, jobs=1)
    parallel = lint.lint_directory(tree, jobs=2)
    assert parallel == serial
    assert any(f.rule == "P1001" for f in serial)
    assert any(f.rule == "E9005" for f in serial)


def test_partition_balances_by_size_and_covers_every_file():
    shares = lint._partition([100, 5, 20, 1], 2)
    assert sorted(i for share in shares for i in share) == [0, 1, 2, 3]
    assert [0] in shares  # the biggest file gets a worker of its own
    assert lint._partition([3], 4) == [[0]]


def test_cache_hit_returns_the_same_findings_without_linting(tree, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    paths = _templates(tree)
    first = lint.lint_templates(paths, cache_dir=cache, jobs=1)
    linted = _spy_on_linting(monkeypatch)
    second = lint.lint_templates(paths, cache_dir=cache, jobs=1)
    assert second == first == lint.lint_templates(paths, cache_dir=None, jobs=1)
    assert linted == [p.name for p in paths]  # only the uncached comparison run linted


def test_cache_hit_reports_the_path_asked_about(tree, tmp_path):
    cache = tmp_path / "cache"
    lint.lint_templates([tree / "service.yaml"], cache_dir=cache, jobs=1)
    copy = tmp_path / "elsewhere" / "service.yaml"
    copy.parent.mkdir()
    shutil.copy(tree / "service.yaml", copy)
    findings = lint.lint_templates([copy], cache_dir=cache, jobs=1)
    assert findings and all(f.file == str(copy) for f in findings)


def test_one_changed_byte_relints_that_template_only(tree, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    paths = _templates(tree)
    lint.lint_templates(paths, cache_dir=cache, jobs=1)
    cluster = tree / "cluster.yaml"
    changed = cluster.read_bytes().replace(b"CidrIp: 127.0.0.1/32", b"CidrIp: 127.0.0.1/99", 1)
    assert changed != cluster.read_bytes()
    cluster.write_bytes(changed)
    linted = _spy_on_linting(monkeypatch)
    findings = lint.lint_templates(paths, cache_dir=cache, jobs=1)
    assert linted == ["cluster.yaml"]
    assert any(f.file == str(cluster) for f in findings)
    assert findings == lint.lint_templates(paths, jobs=1)


def test_fixing_the_template_relints_and_comes_back_clean(tree, tmp_path):
    cache = tmp_path / "cache"
    service = tree / "service.yaml"
    assert lint.lint_templates([service], cache_dir=cache, jobs=1)
    shutil.copy(TEMPLATES / "service.yaml", service)
    assert lint.lint_templates([service], cache_dir=cache, jobs=1) == []


def test_a_changed_rule_file_invalidates_every_entry(tree, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    rules = tmp_path / "rules"
    shutil.copytree(lint.RULES_DIR, rules, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(lint, "RULES_DIR", str(rules))
    paths = _templates(tree)
    lint.lint_templates(paths, cache_dir=cache, jobs=1)
    linted = _spy_on_linting(monkeypatch)
    lint.lint_templates(paths, cache_dir=cache, jobs=1)
    assert linted == []
    rule = next(p for p in sorted(rules.glob("*.py")) if not p.name.startswith("_"))
    rule.write_text(rule.read_text() + "\n# changed\n")
    lint.lint_templates(paths, cache_dir=cache, jobs=1)
    assert linted == [p.name for p in paths]
    helper = rules / "_common.py"  # shared code counts too, though cfn-lint never loads it alone
    helper.write_text(helper.read_text() + "\n# changed\n")
    linted.clear()
    lint.lint_templates(paths, cache_dir=cache, jobs=1)
    assert linted == [p.name for p in paths]


def test_cache_key_covers_cfn_lint_version_regions_and_cfnlintrc(tmp_path, monkeypatch):
    path, content = tmp_path / "t.yaml", b"Resources: {}\n"
    base = lint.LintCache(tmp_path / "c").key(path, content)
    assert lint.LintCache(tmp_path / "c").key(path, content) == base  # stable
    assert lint.LintCache(tmp_path / "c").key(path, content + b" ") != base
    assert lint.LintCache(tmp_path / "c").key(tmp_path / "t.json", content) != base
    monkeypatch.setattr(lint, "REGIONS", ["us-east-1", "eu-west-1"])
    assert lint.LintCache(tmp_path / "c").key(path, content) != base
    monkeypatch.setattr(lint, "REGIONS", ["us-east-1"])
    monkeypatch.chdir(tmp_path)
    before = lint.LintCache(tmp_path / "c").key(path, content)
    (tmp_path / ".cfnlintrc").write_text("ignore_checks: [W3687]\n")
    assert lint.LintCache(tmp_path / "c").key(path, content) != before
    monkeypatch.setattr(lint, "CACHE_FORMAT", "lint-cache-test")
    assert lint.LintCache(tmp_path / "c").key(path, content) != before


def test_cfn_lint_version_is_part_of_the_key(tmp_path, monkeypatch):
    fake = tmp_path / "site" / "cfnlint"
    fake.mkdir(parents=True)
    (fake / "version.py").write_text('__version__ = "0.0.1"\n')

    class Spec:
        submodule_search_locations = [str(fake)]

    path, content = tmp_path / "t.yaml", b"Resources: {}\n"
    real = lint.LintCache(tmp_path / "c").key(path, content)
    monkeypatch.setattr(lint.importlib.util, "find_spec", lambda name: Spec())
    first = lint.LintCache(tmp_path / "c").key(path, content)
    (fake / "version.py").write_text('__version__ = "0.0.2"\n')
    assert lint.LintCache(tmp_path / "c").key(path, content) not in (first, real)


def test_a_corrupt_cache_entry_is_relinted(tree, tmp_path):
    cache = tmp_path / "cache"
    service = tree / "service.yaml"
    expected = lint.lint_templates([service], cache_dir=cache, jobs=1)
    for entry in cache.rglob("*.json"):
        entry.write_text("{not json")
    assert lint.lint_templates([service], cache_dir=cache, jobs=1) == expected


def test_cli_no_cache_writes_nothing_and_cache_is_used_by_default(tree, tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["lint", "--out", str(tree), "--no-cache", "--jobs", "1"]) == 1
    assert not (tmp_path / ".cache").exists()
    assert cli.main(["lint", "--out", str(tree), "--jobs", "2"]) == 1
    assert list((tmp_path / ".cache" / "lint").rglob("*.json"))
    out = capsys.readouterr().out
    assert "E9005" in out


def test_cli_generate_lint_is_one_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    status = cli.main(["generate", "--topology", str(REPO / "topology.yaml"),
                       "--out", str(out), "--lint", "--no-cache"])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "lint:" in text and "clean" in text
    assert (out / "service.yaml").is_file()


def test_jobs_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        cli.main(["lint", "--jobs", "0"])
    assert "positive integer" in capsys.readouterr().err


def test_empty_input_never_imports_cfn_lint():
    assert lint.lint_templates([]) == []


def test_prewarmed_rules_give_the_same_findings(tree: Path):
    serial = lint.lint_directory(tree, jobs=1)
    with lint.PrewarmedRules() as prewarmed:
        assert lint.lint_directory(tree, jobs=2, prewarmed=prewarmed) == serial
    with lint.PrewarmedRules() as prewarmed:
        assert lint.lint_directory(tree, jobs=1, prewarmed=prewarmed) == serial


def test_prewarmed_rules_closed_unused_leave_no_process():
    prewarmed = lint.PrewarmedRules()
    pid = prewarmed.pid
    assert pid
    prewarmed.close()
    assert prewarmed.pid is None
    with pytest.raises(ChildProcessError):
        import os

        os.waitpid(pid, 0)


def test_a_failed_prewarmed_process_falls_back_to_linting_here(tree: Path, monkeypatch):
    serial = lint.lint_directory(tree, jobs=1)
    prewarmed = lint.PrewarmedRules()
    import os
    import signal

    os.kill(prewarmed.pid, signal.SIGKILL)
    try:
        assert lint.lint_directory(tree, jobs=2, prewarmed=prewarmed) == serial
    finally:
        prewarmed.close()


def test_cli_generate_lint_reports_planted_findings_and_exits_1(tmp_path, monkeypatch, capsys):
    """generate --lint lints what it just wrote: a stale cache cannot hide a finding."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    args = ["generate", "--topology", str(REPO / "topology.yaml"), "--out", str(out), "--lint"]
    assert cli.main(args) == 0
    service = out / "service.yaml"
    service.write_text(_plant(service.read_text(encoding="utf-8")), encoding="utf-8")
    assert cli.main(["lint", "--out", str(out)]) == 1
    assert "E9005" in capsys.readouterr().out
    assert cli.main(args) == 0  # generate rewrites the planted file; the cache knows the bytes
