"""`deploy` over stacks of the earlier layout, whose service stacks still hold the rules
admitting their callers (the `Callers` parameter): against moto, each such service's
ingress stack is created only after its service stack was updated, in the same wave, and
the ingress stacks of services already on the new layout come before the waves.

Why the order: EC2 refuses a rule a group already has (InvalidPermission.Duplicate,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html); the first
test shows moto's EC2 refusing it too, so the order is not an assumption of ours alone.
"""
from __future__ import annotations

import json

import botocore.exceptions
import pytest

from tests.ops.test_ops_deploy import _executed_and_deleted, stack_results


def test_ec2_refuses_the_same_rule_twice(boto):
    ec2 = boto("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    callee = ec2.create_security_group(GroupName="callee", Description="x", VpcId=vpc)["GroupId"]
    caller = ec2.create_security_group(GroupName="caller", Description="x", VpcId=vpc)["GroupId"]
    rule = {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
            "UserIdGroupPairs": [{"GroupId": caller}]}
    ec2.authorize_security_group_ingress(GroupId=callee, IpPermissions=[rule])
    with pytest.raises(botocore.exceptions.ClientError) as error:
        ec2.authorize_security_group_ingress(GroupId=callee, IpPermissions=[rule])
    assert error.value.response["Error"]["Code"] == "InvalidPermission.Duplicate"


def _touch(project, *names: str) -> None:
    """A template change (a new output) that gives every stack of these templates a
    change set: unchanged stacks get none (generator.ops.stackflow)."""
    for name in names:
        path = project.templates / name
        document = json.loads(path.read_text())
        document.setdefault("Outputs", {})["Touched"] = {"Value": "yes"}
        path.write_text(json.dumps(document, indent=2))


def _old_layout(project) -> tuple[str, dict]:
    """The stand-in service template and params files as the earlier layout had them."""
    path = project.templates / "service.yaml"
    current = path.read_text()
    document = json.loads(current)
    document["Parameters"]["Callers"] = {"Type": "String", "Default": "none"}
    path.write_text(json.dumps(document, indent=2))
    params = {}
    for service in project.topology.services:
        params[service.name] = project.params(service.name)
        old = json.loads(json.dumps(params[service.name]))
        old["Parameters"]["Callers"] = ",".join(
            c.name for c in project.topology.callers(service)) or "none"
        project.write_params(service.name, old)
    (project.templates / "ingress.yaml").rename(project.templates / "ingress.yaml.new")
    return current, params


def _new_layout(project, current: str, params: dict) -> None:
    (project.templates / "service.yaml").write_text(current)
    for service, document in params.items():
        project.write_params(service, document)
    (project.templates / "ingress.yaml.new").rename(project.templates / "ingress.yaml")


def test_ingress_stacks_follow_their_service_stacks_update_when_the_rules_move(
        project, run, boto, monkeypatch):
    saved = _old_layout(project)
    # The earlier deployer made no ingress stacks; this one, over the old files, would
    # want ingress.yaml: deploy the old layout with a deployer of today that finds the
    # template but stacks that still hold Callers.
    (project.templates / "ingress.yaml.new").rename(project.templates / "ingress.yaml")
    code, out, _ = run(project.first_deploy_argv())
    assert code == 0, out
    cfn = boto("cloudformation")
    for name in ("store", "cache", "server", "client"):
        cfn.delete_stack(StackName=f"shop-{name}-ingress")  # the earlier layout had none
    (project.templates / "ingress.yaml").rename(project.templates / "ingress.yaml.new")
    _new_layout(project, *saved)
    calls = _executed_and_deleted(boto, monkeypatch)

    code, out, err = run(project.deploy_argv())

    assert (code, err) == (0, ""), out
    order = [stack for operation, stack, _ in calls if operation == "CreateChangeSet"]
    for name in ("store", "cache", "server", "client"):
        assert order.index(f"shop-{name}") < order.index(f"shop-{name}-ingress"), order
    # A callee's ingress stack comes before its callers' service stacks start (server
    # calls store); client, in a cycle with server only, waits for nothing else.
    assert order.index("shop-store-ingress") < order.index("shop-server"), order
    assert "their caller rules left the service stack just now" in out
    results = stack_results(out)
    assert {results[f"shop-{n}-ingress"] for n in ("store", "cache", "server", "client")} == {
        "created"}
    # (moto keeps a parameter the new template dropped in DescribeStacks, CloudFormation
    # does not, so the stacks' parameters are not compared here.)
    assert {results[f"shop-{n}"] for n in ("store", "cache", "server", "client")} == {
        "updated"}


def test_without_the_old_parameter_ingress_stacks_come_before_every_wave(
        project, run, boto, monkeypatch):
    assert run(project.first_deploy_argv())[0] == 0
    cfn = boto("cloudformation")
    cfn.delete_stack(StackName="shop-server-ingress")
    _touch(project, "service.yaml")  # so that the service stacks have change sets
    calls = _executed_and_deleted(boto, monkeypatch)

    code, out, _ = run(project.deploy_argv())

    assert code == 0, out
    order = [stack for operation, stack, _ in calls if operation == "CreateChangeSet"]
    assert order.index("shop-server-ingress") < order.index("shop-store")
    assert "left the service stack" not in out


def test_existing_network_stacks_change_after_the_ingress_stacks(project, run, boto,
                                                                   monkeypatch):
    """A narrower outbound rule set (earlier versions kept EC2's allow-all rule) reaches a
    running group only once the ingress stacks hold the rules to its callees."""
    assert run(project.first_deploy_argv())[0] == 0
    path = project.templates / "network.yaml"
    document = json.loads(path.read_text())
    document["Resources"]["TaskSecurityGroup"]["Properties"]["GroupDescription"] = "tasks v2"
    path.write_text(json.dumps(document, indent=2))
    _touch(project, "ingress.yaml", "service.yaml")  # so that every stack has a change set
    calls = _executed_and_deleted(boto, monkeypatch)

    code, out, _ = run(project.deploy_argv())

    assert code == 0, out
    order = [stack for operation, stack, _ in calls if operation == "CreateChangeSet"]
    networks = [order.index(f"shop-{n}-network") for n in ("store", "cache", "server", "client")]
    ingress = [order.index(f"shop-{n}-ingress") for n in ("store", "cache", "server", "client")]
    services = [order.index(f"shop-{n}") for n in ("store", "cache", "server", "client")]
    # Each service's own: its ingress stack, then its network stack, then its service.
    for i, n, s in zip(ingress, networks, services):
        assert i < n < s, order
