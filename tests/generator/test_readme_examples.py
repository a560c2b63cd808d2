"""Every `python -m generator ...` command the README shows in a ```sh block is accepted by
the CLI's own argument checks (flags, ids, subnet counts): a newcomer who copies one gets
past parsing. Usage synopses (with [OPTIONAL] parts) and `$ ` transcripts are skipped."""
from __future__ import annotations

import re
import shlex

import pytest

from generator import cli

README_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def readme_commands(readme: str) -> list[str]:
    commands = []
    for block in README_BLOCK.findall(readme):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("python -m generator ") and "[" not in line:
                commands.append(line)
    return commands


def test_the_readme_has_examples_to_check(repo_root):
    commands = readme_commands((repo_root / "README.md").read_text(encoding="utf-8"))
    assert any(c.startswith("python -m generator deploy --vpc-id") for c in commands)
    assert len(commands) >= 5


def _commands():
    from pathlib import Path

    readme = Path(__file__).resolve().parents[2] / "README.md"
    return readme_commands(readme.read_text(encoding="utf-8"))


@pytest.mark.parametrize("command", _commands())
def test_readme_command_is_accepted(command, capsys):
    argv = shlex.split(command)[3:]
    try:
        args = cli.parser().parse_args(argv)
    except SystemExit as exited:
        pytest.fail(f"{command!r} is rejected: {capsys.readouterr().err.strip()} "
                    f"(exit {exited.code})")
    assert callable(args.handler)


def test_a_bad_example_would_be_caught(capsys):
    """Guards the test above: the README's old example with made-up ids is refused."""
    bad = "python -m generator deploy --vpc-id vpc-0abc --subnets subnet-1,subnet-2"
    with pytest.raises(SystemExit):
        cli.parser().parse_args(shlex.split(bad)[3:])
    assert "is not a" in capsys.readouterr().err
