"""The project's own cfn-lint rules: fixtures in-process, the real CLI, and
the shape cfn-lint's directory loader requires of each rule file."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import cfnlint.core
import pytest
from cfnlint.api import lint
from cfnlint.helpers import create_rules, import_filename
from cfnlint.rules import Rules

from generator.lintrules import RULES_DIR

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rules"
# Same filter cfn-lint's load_plugins applies; anything else is a helper.
RULE_FILES = sorted(
    p for p in Path(RULES_DIR).glob("*.py") if re.match(r"[A-Za-z1-9]", p.name)
)
EXPECT_MARKER = re.compile(r"#\s*expect:\s*(E9\d{3})")


def expected_lines(path):
    """(rule id, line) pairs marked with ``# expect: E9xxx`` in a fixture."""
    return {
        (m.group(1), number)
        for number, line in enumerate(Path(path).read_text().splitlines(), start=1)
        for m in [EXPECT_MARKER.search(line)]
        if m
    }


RULE_IDS = ["E9001", "E9002", "E9003", "E9004", "E9005"]
CFN_LINT = Path(sys.executable).with_name("cfn-lint")

_SVC = ("Resources", "Server", "Properties", "ServiceConnectConfiguration", "Services")
EXPECTED_PATHS = {
    "E9001": {_SVC + (0, "PortName")},
    "E9002": {_SVC + (0, "Timeout", "PerRequestTimeoutSeconds")},
    "E9003": {_SVC + (0, "ClientAliases", 1)},
    "E9004": {
        ("Resources", "Cluster", "Properties", "ServiceConnectDefaults", "Namespace"),
        ("Resources", "Server", "Properties", "ServiceConnectConfiguration", "Namespace"),
        ("Resources", "Client", "Properties", "ServiceConnectConfiguration", "Namespace"),
    },
    "E9005": {
        ("Resources", "ServiceSecurityGroup", "Properties", "SecurityGroupIngress", 1, "CidrIp"),
        ("Resources", "AdminIngress", "Properties", "CidrIpv6"),
        ("Resources", "DebugIngress", "Properties", "CidrIp"),
        ("Resources", "LegacyIngress", "Properties", "CidrIp"),
    },
}


def _ours(matches):
    return [m for m in matches if m.rule.id in RULE_IDS]


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_good_fixture_has_no_match(rule_id, lint_fixture):
    assert _ours(lint_fixture(FIXTURES / rule_id / "good.yaml")) == []


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_bad_fixture_matches_at_marked_lines_and_paths(rule_id, lint_fixture):
    path = FIXTURES / rule_id / "bad.yaml"
    matches = _ours(lint_fixture(path))
    assert {(m.rule.id, m.linenumber) for m in matches} == expected_lines(path)
    assert {tuple(m.path) for m in matches} == EXPECTED_PATHS[rule_id]


def test_load_balancer_security_group_may_take_public_traffic_on_container_port(
    our_rules,
):
    # The load balancer's own group listening on the container port is the
    # normal ALB setup, not a container exposed to the internet.
    text = (FIXTURES / "E9005" / "good.yaml").read_text()
    text = text.replace(
        "FromPort: 443\n          ToPort: 443", "FromPort: 0\n          ToPort: 65535"
    )
    assert "ToPort: 65535" in text
    assert _ours(lint(text, rules=our_rules)) == []
    # ...but the same ingress on the tasks' group is flagged.
    text = text.replace("SecurityGroups: [!GetAtt LoadBalancerSecurityGroup.GroupId]", "")
    assert [m.rule.id for m in _ours(lint(text, rules=our_rules))] == ["E9005", "E9005"]


def test_get_rules_loads_directory_with_builtin_rules(monkeypatch, tmp_path):
    rules = cfnlint.core.get_rules([RULES_DIR], [], [])
    ids = {rule.id for rule in rules}
    assert set(RULE_IDS) <= ids and "E3002" in ids
    # The CLI's loader (Rules, used by cfnlint.runner.Runner) sees the same.
    assert set(Rules.create_from_directory(RULES_DIR)) == set(RULE_IDS)
    # A relative entry that is not a directory from the current working
    # directory is imported as a module name instead, and fails.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception, match="No module named 'generator/rules'"):
        cfnlint.core.get_rules(["generator/rules"], [], [])


def _run_cli(paths, rules_dir, cwd):
    result = subprocess.run(
        [str(CFN_LINT), "--format", "parseable", "--append-rules", rules_dir, "--"]
        + [str(p) for p in paths],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
    # parseable: file:line:column:endline:endcolumn:rule:message
    found = {
        (Path(f).parent.name, rule, int(line))
        for f, line, _, _, _, rule, _ in (
            row.split(":", 6) for row in result.stdout.splitlines() if row.strip()
        )
    }
    return result, found


def test_cli_append_rules_flags_bad_fixtures_and_only_with_our_rules():
    bad = [FIXTURES / rule_id / "bad.yaml" for rule_id in RULE_IDS]
    # The documented invocation, relative to the repository root.
    result, found = _run_cli(bad, "generator/rules", cwd=Path(RULES_DIR).parents[1])
    assert result.returncode != 0, result.stderr
    expected = {(p.parent.name, rule, line) for p in bad for rule, line in expected_lines(p)}
    # Equality also proves the built-in rules find nothing else in them.
    assert found == expected, result.stdout + result.stderr


def test_cli_append_rules_passes_good_fixtures(tmp_path):
    good = [FIXTURES / rule_id / "good.yaml" for rule_id in RULE_IDS]
    result, found = _run_cli(good, RULES_DIR, cwd=tmp_path)
    assert (result.returncode, found) == (0, set()), result.stdout + result.stderr


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.stem)
def test_rule_file_shape(rule_file):
    # Load it exactly as cfn-lint does: by path, outside any package.
    module = import_filename(rule_file.stem, str(rule_file.parent))
    rules = create_rules(module)
    assert len(rules) == 1, f"{rule_file.name} must define exactly one rule class"
    rule = rules[0]
    assert type(rule).__name__ == rule_file.stem
    assert re.fullmatch(r"E9\d{3}", rule.id)
    assert rule.shortdesc and rule.source_url.startswith("https://") and rule.tags
    assert rule.description and "\n" not in rule.description
    for name in ("good.yaml", "bad.yaml"):
        assert (FIXTURES / rule.id / name).is_file()
    # cfn-lint imports the file outside the project: only cfnlint and stdlib.
    for node in ast.walk(ast.parse(rule_file.read_text())):
        names = (
            [a.name for a in node.names] if isinstance(node, ast.Import)
            else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        )
        for name in names:
            top = name.split(".")[0]
            assert top == "cfnlint" or top in sys.stdlib_module_names, name


def test_directory_holds_exactly_the_five_rules():
    assert sorted(p.stem for p in RULE_FILES) == sorted(
        type(r).__name__ for r in Rules.create_from_directory(RULES_DIR).values()
    )
    assert sorted(Rules.create_from_directory(RULES_DIR)) == RULE_IDS
    assert not os.path.exists(os.path.join(RULES_DIR, "__init__.py"))
