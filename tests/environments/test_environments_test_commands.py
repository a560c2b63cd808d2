"""An environment's test_commands: run in order in a shell, with the stacks' outputs as
variables; the first failure stops verify in one line."""
from __future__ import annotations

import io

import pytest

from generator.ops import testcommands


@pytest.fixture
def production(two_environments):
    return two_environments.in_environment("production")


def test_variables_name_the_environment_and_each_services_outputs(production):
    values = testcommands.variables(
        production, {"ClusterName": "shop-production-cluster"},
        {"web": {"LoadBalancerUrl": "http://lb.example", "LogGroupName": "/ecs/x"}})
    assert values["APP"] == "shop-production"
    assert values["ENVIRONMENT"] == "production"
    assert values["CLUSTER_NAME"] == "shop-production-cluster"
    assert values["WEB_URL"] == "http://lb.example"
    assert values["WEB_LOAD_BALANCER_URL"] == "http://lb.example"
    assert values["WEB_LOG_GROUP_NAME"] == "/ecs/x"
    assert values["ORDERS_ENDPOINT"] == "http://orders.production.shop.internal:9090"
    assert "ORDERS_URL" not in values  # not public: no load balancer


def test_commands_see_the_variables_and_run_in_order(tmp_path):
    out = io.StringIO()
    marker = tmp_path / "ran"
    testcommands.run((f'test "$APP" = shop-production && echo one >> {marker}',
                      f'echo "$WEB_URL" >> {marker}'),
                     {"APP": "shop-production", "WEB_URL": "http://lb"}, out)
    assert marker.read_text().splitlines() == ["one", "http://lb"]
    assert "test command 2/2" in out.getvalue()


def test_the_first_failure_stops_with_one_line(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(testcommands.TestCommandFailed) as raised:
        testcommands.run(("exit 3", f"touch {marker}"), {}, io.StringIO())
    assert str(raised.value) == "test command 1 failed (exit 3): exit 3"
    assert not marker.exists()


def test_a_hanging_command_times_out():
    with pytest.raises(testcommands.TestCommandFailed, match="timed out after 1 s: sleep 5"):
        testcommands.run(("sleep 5",), {}, io.StringIO(), timeout_seconds=1)
