"""Fixtures for the tests of the project's cfn-lint rules (generator/rules)."""

from pathlib import Path

import pytest
from cfnlint.api import lint
from cfnlint.rules import RulesCollection

from generator.lintrules import RULES_DIR


@pytest.fixture(scope="session")
def our_rules():
    """Only our rules (fast: no built-ins), built once and reused for every
    template; loading the directory twice into one collection raises
    DuplicateRuleError."""
    rules = RulesCollection()
    rules.create_from_directory(RULES_DIR)
    return rules


@pytest.fixture(scope="session")
def lint_fixture(our_rules):
    def run(path):
        return lint(Path(path).read_text(), rules=our_rules)

    return run
