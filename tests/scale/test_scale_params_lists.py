"""A CommaDelimitedList parameter's AllowedPattern applies to each item (CloudFormation's
Parameters reference: "When applied to a parameter of type CommaDelimitedList, the
pattern must match each value in the list"). Before the fix, the check applied it to the
joined value, so any callee with two callers was refused at generate time."""
from __future__ import annotations

import json

from generator import paramscheck

SPEC = {"Callers": {"Type": "CommaDelimitedList", "AllowedPattern": r"^[a-z][a-z0-9-]*$"},
        "Name": {"Type": "String", "AllowedPattern": r"^[a-z][a-z0-9-]*$"}}


def _findings(values: dict) -> list:
    return paramscheck.check_params_text("params/x.json", json.dumps({"Parameters": values}),
                                         SPEC, {})


def test_each_item_of_a_list_is_matched():
    assert _findings({"Callers": "web,api-2,worker", "Name": "x"}) == []


def test_one_bad_item_is_named():
    (finding,) = _findings({"Callers": "web,Api,worker", "Name": "x"})
    assert finding.rule == "P1002" and "'Api'" in finding.message


def test_a_string_is_still_matched_whole():
    (finding,) = _findings({"Callers": "web", "Name": "a,b"})
    assert "'a,b'" in finding.message
