"""Topologies that cannot be deployed are refused by `generate` before anything is
written: exit 2, one line on stderr that names the culprit, the limit and the way out,
and the output directory byte for byte as it was. Each refusal has a neighbour just
inside the limit that is accepted, so a check that refused everything would fail here.
"""
from __future__ import annotations

import json

import pytest

from scalekit import (
    assert_accepted, assert_refused, ingress_parameters, load_template, topology_doc,
)

RULES_QUOTA = 60  # https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html
PARAMETERS_QUOTA = 200  # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html
ENV_VALUE_MAX = 4096  # the service template's MaxLength; CloudFormation's parameter value limit


def _hub(callers: int, *, public: bool = False, **top) -> dict:
    services = {"hub": {"port": 8080, **({"public": True} if public else {})}}
    for i in range(callers):
        services[f"caller{i:02d}"] = {"port": 8080, "calls": ["hub"]}
    return topology_doc(services, **top)


# --- security-group inbound rules ------------------------------------------------------

def test_hub_with_61_callers_is_refused(generate_into):
    line = assert_refused(generate_into(_hub(61)), "hub", "61", str(RULES_QUOTA),
                          "quotas.security_group_inbound_rules")
    assert "caller00" not in line  # names the callee, not a list of callers


def test_hub_with_61_callers_is_accepted_with_a_declared_quota_of_100(generate_into):
    outcome = generate_into(_hub(61, quotas={"security_group_inbound_rules": 100}), "--lint",
                            "--no-cache")
    assert_accepted(outcome)
    callers = ingress_parameters(outcome.out)["hub"]
    assert len(callers["Callers"].split(",")) == 61


@pytest.mark.parametrize("callers, public, accepted", [
    (60, False, True),   # 60 rules: at the quota
    (59, True, True),    # 59 callers + the load balancer's rule
    (60, True, False),   # 61 rules
])
def test_the_load_balancer_rule_counts(generate_into, callers, public, accepted):
    outcome = generate_into(_hub(callers, public=public))
    if accepted:
        assert_accepted(outcome)
    else:
        assert_refused(outcome, "hub", "load balancer", str(RULES_QUOTA),
                       "quotas.security_group_inbound_rules")


# --- names ----------------------------------------------------------------------------

def test_names_equal_without_dashes_are_refused(generate_into):
    document = topology_doc({"api-2": {"port": 8080}, "api2": {"port": 8080, "calls": ["api-2"]},
                             "web": {"port": 8080, "calls": ["api-2", "api2"]}})
    assert_refused(generate_into(document), "api-2", "api2")


def test_edge_names_that_would_once_have_collided_are_fine(generate_into):
    # a -> b-to-c and a-to-b -> c: "a" + "b-to-c" and "a-to-b" + "c" once made the same
    # per-edge logical id. Rules are now per caller in each callee's own stack.
    document = topology_doc({
        "a": {"port": 8080, "calls": ["b-to-c"]},
        "b-to-c": {"port": 8080},
        "a-to-b": {"port": 8080, "calls": ["c"]},
        "c": {"port": 8080},
    })
    outcome = generate_into(document, "--lint", "--no-cache")
    assert_accepted(outcome)
    assert "file(s) clean" in outcome.result.stdout
    ingress = ingress_parameters(outcome.out)
    for callee, callers in (("b-to-c", "a"), ("c", "a-to-b"), ("a", "none")):
        assert ingress[callee]["Callers"] == callers


@pytest.mark.parametrize("name", ["cluster", "pipeline", "bootstrap"])
def test_a_service_named_like_a_fixed_stack_is_refused(generate_into, name):
    document = topology_doc({name: {"port": 8080}, "web": {"port": 8080, "calls": [name]}})
    assert_refused(generate_into(document), name, f"demo-{name}")


@pytest.mark.parametrize("order", [("x", "x-network"), ("x-network", "x")])
def test_a_service_named_like_another_ones_network_stack_is_refused(generate_into, order):
    document = topology_doc({name: {"port": 8080} for name in order})
    assert_refused(generate_into(document), "demo-x-network")


def test_the_reserved_name_none_is_refused(generate_into):
    document = topology_doc({"none": {"port": 8080}, "web": {"port": 8080, "calls": ["none"]}})
    assert_refused(generate_into(document), "none", "reserved")


# --- template parameters --------------------------------------------------------------

def _env_topology(names: int) -> dict:
    """Two services sharing `names` distinct environment variable names between them."""
    variables = [f"SETTING_{i:03d}" for i in range(names)]
    half = len(variables) // 2
    return topology_doc({
        "web": {"port": 8080, "calls": ["api"],
                "environment": {v: "on" for v in variables[:half]}},
        "api": {"port": 8080, "environment": {v: "1" for v in variables[half:]}},
    })


def test_too_many_environment_names_push_service_yaml_past_200_parameters(
        generate_into, tmp_path):
    # How many parameters service.yaml has without extra variables, read from a real run.
    outcome = generate_into(_env_topology(0), preexisting=False)
    assert_accepted(outcome)
    fixed = len(load_template(outcome.out / "service.yaml")["Parameters"])
    room = PARAMETERS_QUOTA - fixed
    assert room > 100  # plenty of room for ordinary topologies

    just_fits = generate_into(_env_topology(room))
    assert_accepted(just_fits)
    assert len(load_template(just_fits.out / "service.yaml")["Parameters"]) == PARAMETERS_QUOTA

    line = assert_refused(generate_into(_env_topology(room + 1)), "service.yaml",
                          str(PARAMETERS_QUOTA + 1), str(PARAMETERS_QUOTA),
                          "fewer distinct environment variable names")
    assert line.startswith("error: service.yaml: ")


# --- environment values ----------------------------------------------------------------

def _one_value(value: str) -> dict:
    return topology_doc({"web": {"port": 8080, "environment": {"BLOB": value}}})


def _names_limit(line: str) -> bool:
    return str(ENV_VALUE_MAX) in line.replace(",", "")


def test_a_5_mb_environment_value_is_refused(generate_into):
    outcome = generate_into(_one_value("x" * 5_000_000))
    line = assert_refused(outcome, "params/web.json", "EnvBlob")
    assert _names_limit(line), line
    assert len(line) < 1000  # the value itself is not echoed


def test_an_environment_value_one_past_the_parameter_limit_is_refused(generate_into):
    assert_accepted(generate_into(_one_value("v" * ENV_VALUE_MAX)))
    line = assert_refused(generate_into(_one_value("v" * (ENV_VALUE_MAX + 1))),
                          "params/web.json", "EnvBlob", "topology.yaml")
    assert _names_limit(line), line


def test_an_environment_value_past_4096_bytes_in_fewer_characters_is_refused(generate_into):
    # CloudFormation's limit is 4,096 bytes per parameter value; the template's MaxLength
    # counts characters, so 4,096 two-byte characters pass it and need the byte check.
    line = assert_refused(generate_into(_one_value("\u00e9" * ENV_VALUE_MAX)),
                          "params/web.json", "EnvBlob", "bytes")
    assert _names_limit(line), line


def test_a_callers_list_past_4096_bytes_is_refused(generate_into):
    # Callers is a CommaDelimitedList: no MaxLength in the template can bound it. A hub
    # whose raised rules quota admits 100 callers with 40-odd-character names would be
    # refused by CloudFormation at deploy time; generate refuses it first.
    services = {"hub": {"port": 8080}}
    for i in range(100):
        services[f"caller-with-a-rather-long-descriptive-name-{i:03d}"] = {
            "port": 8080, "calls": ["hub"]}
    document = topology_doc(services, quotas={"security_group_inbound_rules": 200})
    line = assert_refused(generate_into(document), "services.hub", "ingress stack",
                          "Callers", "bytes")
    assert _names_limit(line), line
    # The same hub with 80 such callers (3,759 bytes) is accepted.
    for i in range(80, 100):
        del services[f"caller-with-a-rather-long-descriptive-name-{i:03d}"]
    assert_accepted(generate_into(document))


@pytest.mark.parametrize("order", [("x", "x-ingress"), ("x-ingress", "x")])
def test_a_service_named_like_another_ones_ingress_stack_is_refused(generate_into, order):
    document = topology_doc({name: {"port": 8080} for name in order})
    assert_refused(generate_into(document), "demo-x-ingress")


def test_a_name_whose_network_and_ingress_stacks_pass_128_characters_is_refused(generate_into):
    # "<app>-<service>" alone fits; "-network" and "-ingress" push it past CloudFormation's
    # 128 characters for a stack name (CreateStack's StackName).
    service = "s" * 63
    too_long = {"app": "a" * 57, "namespace": "demo.internal",
                "services": {service: {"port": 8080}}}
    assert len(f"{'a' * 57}-{service}") == 121
    assert_refused(generate_into(too_long), f"services.{service}", "-network", "128")
    # 128 characters exactly: the stack names fit, but an app of 56 characters is repeated
    # in the permissions boundary past IAM's 6,144 characters; refused for that, in one line.
    at_the_limit = dict(too_long, app="a" * 56)
    assert_refused(generate_into(at_the_limit), "app:", "permissions boundary", "6,144",
                   "shorter app name")
    # With the app at the boundary's limit (40 characters), the longest service name fits.
    assert_accepted(generate_into(dict(too_long, app="a" * 40)))


def test_the_longest_app_the_boundary_holds(generate_into):
    """IAM's 6,144 characters for a managed policy bound the app's name, which the
    permissions boundary repeats: 40 characters fit, 41 are refused in one line."""
    def document(app: str) -> dict:
        return {"app": app, "namespace": "demo.internal", "services": {"web": {"port": 80}}}

    assert_accepted(generate_into(document("a" * 40)))
    assert_refused(generate_into(document("a" * 41)), "app:", "permissions boundary")


def test_a_hub_with_more_callers_than_a_quarter_of_the_resource_quota_is_counted_exactly(
        generate_into):
    """The ingress stack holds, per caller, one rule and the alarm of the caller's view
    (issue 17), and one rule per callee: a hub with 249 callers (raised rules quota) and
    no callees has 2 x 249 + 1 = 499 resources, inside 500, so it is accepted (counting
    each loop at the largest count of any loop would have refused it); 250 callers make
    501, refused in one line before anything is written."""
    assert_accepted(generate_into(_hub(249, quotas={"security_group_inbound_rules": 400})))
    assert_refused(generate_into(_hub(250, quotas={"security_group_inbound_rules": 400})),
                   "ingress.yaml", "501 resources", "500", "services.hub", "fewer callers")
