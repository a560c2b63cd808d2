"""pipeline.live_parameters: the carried values a deploy passes, from the live stacks."""
from __future__ import annotations

import json

from generator import params
from pipeline import live_parameters


def test_new_stacks_get_the_topology_initial_values(seed_topology):
    values = live_parameters.carried_values(seed_topology, lambda stack: None)
    assert values["server"] == {"DesiredCount": "1", "EnableExecuteCommand": "false",
                                "DeploymentNonce": ""}
    assert set(values) == {"server", "client"}


def test_existing_stacks_keep_what_the_operator_set(seed_topology):
    live = {
        "demo-server": {"DesiredCount": "6", "EnableExecuteCommand": "true",
                        "DeploymentNonce": "sc-abc", "Cpu": "4096"},
    }
    values = live_parameters.carried_values(seed_topology, live.get)
    assert values["server"] == {"DesiredCount": "6", "EnableExecuteCommand": "true",
                                "DeploymentNonce": "sc-abc"}  # Cpu is topology-owned
    assert values["client"]["DesiredCount"] == "1"


def test_a_parameter_the_old_template_lacked_keeps_its_initial_value(seed_topology):
    values = live_parameters.carried_values(
        seed_topology, lambda stack: {"DesiredCount": "3"})
    assert values["client"] == {**params.initial_values(
        seed_topology, seed_topology.service("client")), "DesiredCount": "3"}


def test_write_produces_one_json_per_service(seed_topology, tmp_path):
    values = live_parameters.carried_values(seed_topology, lambda stack: None)
    written = live_parameters.write(tmp_path, values)
    assert sorted(p.name for p in written) == ["client.json", "server.json"]
    assert json.loads((tmp_path / "server.json").read_text())["DeploymentNonce"] == ""


class _FakeClient:
    def __init__(self, stacks):
        self.stacks = stacks

    def describe_stacks(self, StackName):
        from botocore.exceptions import ClientError

        if StackName not in self.stacks:
            raise ClientError({"Error": {"Code": "ValidationError",
                                         "Message": f"Stack with id {StackName} does not exist"}},
                              "DescribeStacks")
        return {"Stacks": [self.stacks[StackName]]}


def test_cloudformation_reader_handles_missing_and_existing_stacks():
    read = live_parameters.cloudformation_reader(_FakeClient({
        "demo-server": {"StackStatus": "UPDATE_COMPLETE", "Parameters": [
            {"ParameterKey": "DesiredCount", "ParameterValue": "4"}]},
        "demo-new": {"StackStatus": "REVIEW_IN_PROGRESS", "Parameters": []},
    }))
    assert read("demo-server") == {"DesiredCount": "4"}
    assert read("demo-client") is None
    assert read("demo-new") is None
