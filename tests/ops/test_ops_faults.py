"""`deploy` under CloudFormation's failure states (issue 14, finding 11).

moto never rolls a failed create back, so ROLLBACK_COMPLETE is imitated: the stack is
created in moto with a template that holds nothing (what a rolled-back create leaves) and
the parameters the failed run passed, and every DescribeStacks answer the deployer's own
clients get reports it as ROLLBACK_COMPLETE until the deployer deletes it. What follows
the delete (a CREATE change set on a name that is free again) is moto's own.

CloudFormation's rule being imitated: a stack whose create failed and rolled back can only
be deleted, not updated
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/troubleshooting.html#troubleshooting-errors-update-rollback-failed,
and the ROLLBACK_COMPLETE status in
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html).
"""
from __future__ import annotations

import json

import generator.ops.aws as aws_module
from tests.ops.test_ops_deploy import NEW_IMAGE, parameters, stack_results


def _stack_name(value: str) -> str:
    # DeleteStack gets the stack id: arn:aws:cloudformation:<region>:<account>:stack/<name>/<uuid>
    return value.split("/")[1] if value.startswith("arn:") else value


def imitate_failed_create(monkeypatch, *names: str) -> list[str]:
    """Report `names` as ROLLBACK_COMPLETE to the deployer until it deletes them; returns
    the stack names of its DeleteStack calls, in order."""
    failed = set(names)
    deleted: list[str] = []
    real_client = aws_module.Aws.client

    def rewrite(parsed, **_):
        for stack in parsed.get("Stacks", []):
            if stack["StackName"] in failed and stack["StackStatus"].endswith("_COMPLETE"):
                stack["StackStatus"] = "ROLLBACK_COMPLETE"

    def on_delete(params, **_):
        name = _stack_name(params["StackName"])
        deleted.append(name)
        failed.discard(name)

    def client(self, service):
        made = real_client(self, service)
        if service == "cloudformation":
            made.meta.events.register("after-call.cloudformation.DescribeStacks", rewrite)
            made.meta.events.register("before-parameter-build.cloudformation.DeleteStack",
                                      on_delete)
        return made

    monkeypatch.setattr(aws_module.Aws, "client", client)
    return deleted


def create_rolled_back(boto, project, stack_name: str, template_file: str,
                       values: dict[str, str]) -> None:
    """A stack with `template_file`'s parameters and `values`, and no resources."""
    declared = json.loads((project.templates / template_file).read_text())["Parameters"]
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Parameters": declared,
                "Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}
    boto("cloudformation").create_stack(
        StackName=stack_name, TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()])


def test_a_service_stack_whose_first_create_failed_is_recreated_in_one_run(
        project, run, boto, monkeypatch):
    """The service stack's parameters are built for a CREATE after the delete: on main,
    DeploymentNonce (carried with UsePreviousValue) crashed the run with a ValueError."""
    assert run(project.first_deploy_argv())[0] == 0
    cfn = boto("cloudformation")
    failed_values = parameters(boto, "shop-store")
    cfn.delete_stack(StackName="shop-store")
    create_rolled_back(boto, project, "shop-store", "service.yaml", failed_values)
    deleted = imitate_failed_create(monkeypatch, "shop-store")

    code, out, err = run(project.deploy_argv("--image", NEW_IMAGE))

    assert (code, err) == (0, ""), out + err
    assert deleted == ["shop-store"]
    assert "ROLLBACK_COMPLETE: its first create failed" in out
    assert stack_results(out)["shop-store"] == "created"
    store = parameters(boto, "shop-store")
    assert store["ImageUri"] == NEW_IMAGE
    assert store["DeploymentNonce"] == ""  # a new stack's initial value
    assert store["DesiredCount"] == "1"


def test_a_cluster_stack_whose_first_create_failed_is_recreated_without_public_subnets(
        project, run, boto, monkeypatch):
    """The first run gave --vpc-id and --subnets only; the same command again succeeds.
    On main, PublicSubnetIds (kept with UsePreviousValue) crashed it with a ValueError."""
    create_rolled_back(boto, project, "shop-cluster", "cluster.yaml", {
        "VpcId": project.vpc_id, "PrivateSubnetIds": project.subnets, "PublicSubnetIds": ""})
    deleted = imitate_failed_create(monkeypatch, "shop-cluster")

    code, out, err = run(project.first_deploy_argv())

    assert (code, err) == (0, ""), out + err
    assert deleted == ["shop-cluster"]
    assert stack_results(out)["shop-cluster"] == "created"
    cluster = parameters(boto, "shop-cluster")
    assert cluster["VpcId"] == project.vpc_id and cluster["PrivateSubnetIds"] == project.subnets


def test_a_failed_first_create_without_the_flags_again_is_one_line_naming_them(
        project, run, boto, monkeypatch):
    """Recreating is a first deploy: the flags are needed again, and nothing is deleted
    until they are given. The failed stack's values are shown to copy."""
    create_rolled_back(boto, project, "shop-cluster", "cluster.yaml", {
        "VpcId": project.vpc_id, "PrivateSubnetIds": project.subnets, "PublicSubnetIds": ""})
    deleted = imitate_failed_create(monkeypatch, "shop-cluster")

    code, _, err = run(project.deploy_argv("--image", NEW_IMAGE))

    assert code == 2, err
    assert err.count("\n") == 1 and "--vpc-id" in err and "ROLLBACK_COMPLETE" in err, err
    assert project.vpc_id in err  # the failed create's value
    assert deleted == []


def test_dry_run_of_a_failed_first_create_deletes_nothing(project, run, boto, monkeypatch):
    assert run(project.first_deploy_argv())[0] == 0
    deleted = imitate_failed_create(monkeypatch, "shop-cache")

    code, out, err = run(project.deploy_argv("--dry-run", "--image", NEW_IMAGE))

    assert (code, err) == (0, ""), out + err
    assert deleted == []
    assert "shop-cache" in out and "a deploy deletes it and creates it again" in out
