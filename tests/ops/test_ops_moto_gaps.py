"""moto's gaps that tests/ops/moto_launcher.py patches: each test here fails loudly once
moto closes the gap itself, so the patch is removed instead of hiding a changed moto."""
from __future__ import annotations

import json

import boto3
from moto import mock_aws

BODY = json.dumps({"Description": "described",
                   "Resources": {"H": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}})


def _description_after_a_create_change_set() -> str | None:
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name="us-east-1")
        made = cfn.create_change_set(StackName="s", ChangeSetName="c", ChangeSetType="CREATE",
                                     TemplateBody=BODY)
        cfn.execute_change_set(ChangeSetName=made["Id"])
        return cfn.describe_stacks(StackName="s")["Stacks"][0].get("Description")


def test_unpatched_moto_still_forgets_the_description_of_a_change_set_stack(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert _description_after_a_create_change_set() is None, (
        "moto now keeps the Description: remove the patch in tests/ops/moto_launcher.py")


def test_the_launched_moto_states_it(boto):
    cfn = boto("cloudformation")
    made = cfn.create_change_set(StackName="s", ChangeSetName="c", ChangeSetType="CREATE",
                                 TemplateBody=BODY)
    cfn.execute_change_set(ChangeSetName=made["Id"])
    assert cfn.describe_stacks(StackName="s")["Stacks"][0]["Description"] == "described"
