"""Flags are checked before any AWS call: one line, exit 2."""
from __future__ import annotations

import pytest

from generator.cli import main


@pytest.mark.parametrize("argv,expected", [
    (["deploy", "--public-subnets", "subnet-0a1b2c3d"],
     "argument --public-subnets: needs at least 2 subnet ids in different Availability Zones, got 1"),
    (["deploy", "--subnets", "subnet-0a1b2c3d,sub-1"], "'sub-1' is not a subnet id"),
    (["deploy", "--vpc-id", "vpc-1"], "argument --vpc-id: 'vpc-1' is not a VPC id"),
    (["lint", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
    (["deploy", "--calls-per-second", "-1"],
     "argument --calls-per-second: must be a number, 0 or more"),
    (["deploy", "--calls-per-second", "nan"],
     "argument --calls-per-second: must be a number, 0 or more"),
    (["deploy", "--calls-per-second", "fast"], "argument --calls-per-second: not a number"),
    (["deploy", "--max-parallel", "0"], "argument --max-parallel: must be at least 1"),
])
def test_bad_flags_are_one_line_and_exit_2(capsys, argv, expected):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: python -m generator ")
    assert expected in err


def test_two_public_subnets_pass_the_flag_check(capsys, tmp_path):
    # Past the flags, the next check is the templates directory: no AWS call is made.
    code = main(["deploy", "--public-subnets", "subnet-0a1b2c3d, subnet-0a1b2c3e",
                 "--templates", str(tmp_path / "none"), "--region", "us-east-1"])
    assert code == 2
    assert "argument --public-subnets" not in capsys.readouterr().err
