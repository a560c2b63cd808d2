"""What moto does not model, through botocore's Stubber: a stack whose resources fail and
roll back (with its events), AWS's FAILED empty change set, a ROLLBACK_COMPLETE stack
deleted and created again, an UPDATE_ROLLBACK_FAILED stack."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import ANY, Stubber

from generator.ops.report import Reporter
from generator.ops.stackflow import StackDeployer, StackRequest

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/shop-server/1"
CHANGE_SET = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/cs/1"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def event(n: int, logical: str, status: str, reason: str = "", seconds: int = 0) -> dict:
    return {"StackId": STACK_ID, "EventId": f"e{n}", "StackName": "shop-server",
            "LogicalResourceId": logical, "ResourceStatus": status,
            "ResourceStatusReason": reason, "Timestamp": T0 + timedelta(seconds=seconds)}


@pytest.fixture
def cfn():
    client = boto3.client("cloudformation", region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def request() -> StackRequest:
    return StackRequest("shop-server", "Resources: {}", {"ImageUri": "repo/app:1"})


def deployer(client, out: io.StringIO) -> StackDeployer:
    return StackDeployer(client, Reporter(out), poll_seconds=0, sleep=lambda _: None)


def test_a_failed_create_reports_the_first_failing_resource_and_its_reason(cfn):
    client, stub = cfn
    stub.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": STACK_ID},
                      {"StackName": "shop-server", "ChangeSetName": ANY, "ChangeSetType": "CREATE",
                       "Parameters": [{"ParameterKey": "ImageUri", "ParameterValue": "repo/app:1"}],
                       "Capabilities": ANY, "Description": ANY, "TemplateBody": "Resources: {}"})
    stub.add_response("describe_change_set", {
        "ChangeSetId": CHANGE_SET, "StackId": STACK_ID, "Status": "CREATE_COMPLETE",
        "Changes": [{"Type": "Resource", "ResourceChange": {
            "Action": "Add", "LogicalResourceId": "Service", "ResourceType": "AWS::ECS::Service"}}]})
    stub.add_response("describe_stack_events", {"StackEvents": [
        event(0, "shop-server", "REVIEW_IN_PROGRESS", "User Initiated")]})
    stub.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET})
    # First poll: the create is under way.
    stub.add_response("describe_stack_events", {"StackEvents": [
        event(2, "Service", "CREATE_IN_PROGRESS", seconds=3),
        event(1, "shop-server", "CREATE_IN_PROGRESS", "User Initiated"),
        event(0, "shop-server", "REVIEW_IN_PROGRESS")]})
    stub.add_response("describe_stacks", {"Stacks": [{
        "StackName": "shop-server", "StackId": STACK_ID, "CreationTime": T0,
        "StackStatus": "CREATE_IN_PROGRESS"}]})
    # Second poll: the service failed, the rest was cancelled, the stack rolled back.
    stub.add_response("describe_stack_events", {"StackEvents": [
        event(6, "shop-server", "ROLLBACK_COMPLETE", seconds=95),
        event(5, "shop-server", "ROLLBACK_IN_PROGRESS",
              "The following resource(s) failed to create: [Service].", seconds=91),
        event(4, "ScalableTarget", "CREATE_FAILED", "Resource creation cancelled", seconds=90),
        event(3, "Service", "CREATE_FAILED",
              "ECS Deployment Circuit Breaker was triggered", seconds=90),
        event(2, "Service", "CREATE_IN_PROGRESS", seconds=3)]})
    stub.add_response("describe_stacks", {"Stacks": [{
        "StackName": "shop-server", "StackId": STACK_ID, "CreationTime": T0,
        "StackStatus": "ROLLBACK_COMPLETE"}]})
    stub.add_response("describe_stack_events", {"StackEvents": [
        event(6, "shop-server", "ROLLBACK_COMPLETE", seconds=95)]})
    out = io.StringIO()

    outcome = deployer(client, out).deploy(request(), None)

    assert not outcome.ok
    assert outcome.failure == "Service: ECS Deployment Circuit Breaker was triggered"
    lines = out.getvalue().splitlines()
    assert "shop-server  +  0s  shop-server                  CREATE_IN_PROGRESS   User Initiated" in lines
    assert ("shop-server  + 90s  Service                      CREATE_FAILED        "
            "ECS Deployment Circuit Breaker was triggered") in lines
    assert lines[-1] == ("shop-server  ROLLBACK_COMPLETE: first failure: Service: ECS "
                         "Deployment Circuit Breaker was triggered")


def test_an_empty_change_set_is_no_changes_and_is_deleted(cfn):
    client, stub = cfn
    stack = {"StackName": "shop-server", "StackId": STACK_ID, "CreationTime": T0,
             "StackStatus": "UPDATE_COMPLETE", "Parameters": []}
    stub.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": STACK_ID})
    stub.add_response("describe_change_set", {
        "ChangeSetId": CHANGE_SET, "StackId": STACK_ID, "Status": "FAILED",
        "StatusReason": "The submitted information didn't contain changes. Submit different "
                        "information to create a change set."})
    stub.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
    out = io.StringIO()

    outcome = deployer(client, out).deploy(request(), stack)

    assert (outcome.ok, outcome.result) == (True, "no changes")
    assert out.getvalue() == "shop-server  no changes\n"


def test_a_rollback_complete_stack_is_deleted_and_created_again(cfn):
    """A failed first create holds nothing; it must never block later runs."""
    client, stub = cfn
    stack = {"StackName": "shop-server", "StackId": STACK_ID, "CreationTime": T0,
             "StackStatus": "ROLLBACK_COMPLETE"}
    stub.add_response("describe_stack_events", {"StackEvents": [
        event(6, "shop-server", "ROLLBACK_COMPLETE", seconds=95)]})
    stub.add_response("delete_stack", {}, {"StackName": STACK_ID,
                                           "RoleARN": "arn:aws:iam::123456789012:role/deploy"})
    stub.add_response("describe_stack_events", {"StackEvents": [
        event(7, "shop-server", "DELETE_COMPLETE", seconds=99),
        event(6, "shop-server", "ROLLBACK_COMPLETE", seconds=95)]})
    stub.add_response("describe_stacks", {"Stacks": [{
        "StackName": "shop-server", "StackId": STACK_ID, "CreationTime": T0,
        "StackStatus": "DELETE_COMPLETE"}]})
    stub.add_response("describe_stack_events", {"StackEvents": [
        event(7, "shop-server", "DELETE_COMPLETE", seconds=99)]})
    # Then the ordinary first create: a CREATE change set, executed.
    stub.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": STACK_ID},
                      {"StackName": "shop-server", "ChangeSetName": ANY, "ChangeSetType": "CREATE",
                       "Parameters": ANY, "Capabilities": ANY, "Description": ANY,
                       "TemplateBody": "Resources: {}",
                       "RoleARN": "arn:aws:iam::123456789012:role/deploy"})
    stub.add_response("describe_change_set", {
        "ChangeSetId": CHANGE_SET, "StackId": STACK_ID, "Status": "CREATE_COMPLETE",
        "Changes": []})
    stub.add_response("describe_stack_events", {"StackEvents": [
        event(8, "shop-server", "REVIEW_IN_PROGRESS", "User Initiated")]})
    stub.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET})
    stub.add_response("describe_stack_events", {"StackEvents": [
        event(9, "shop-server", "CREATE_COMPLETE", seconds=120),
        event(8, "shop-server", "REVIEW_IN_PROGRESS")]})
    stub.add_response("describe_stacks", {"Stacks": [{
        "StackName": "shop-server", "StackId": STACK_ID, "CreationTime": T0,
        "StackStatus": "CREATE_COMPLETE"}]})
    stub.add_response("describe_stack_events", {"StackEvents": [
        event(9, "shop-server", "CREATE_COMPLETE", seconds=120)]})
    out = io.StringIO()
    deploy = StackDeployer(client, Reporter(out), poll_seconds=0, sleep=lambda _: None,
                           role_arn="arn:aws:iam::123456789012:role/deploy")

    outcome = deploy.deploy(request(), stack)

    assert (outcome.ok, outcome.result) == (True, "created")
    text = out.getvalue()
    assert "ROLLBACK_COMPLETE: its first create failed, so it holds nothing; deleting it" in text
    assert text.index("DELETE_COMPLETE (deleted)") < text.index("CREATE_COMPLETE (created)")


def test_an_update_rollback_failed_stack_gets_one_line_with_the_command(cfn):
    client, _ = cfn  # no call may be made: the Stubber fails on any
    stack = {"StackName": "shop-server", "StackId": STACK_ID, "CreationTime": T0,
             "StackStatus": "UPDATE_ROLLBACK_FAILED"}

    outcome = deployer(client, io.StringIO()).deploy(request(), stack)

    assert not outcome.ok
    assert outcome.failure == (
        "stack shop-server is UPDATE_ROLLBACK_FAILED: an update rollback failed: finish it "
        "with `aws cloudformation continue-update-rollback --stack-name shop-server`, then "
        "deploy again")
    assert "\n" not in outcome.failure


def test_a_stack_that_stays_in_progress_fails_the_run_after_the_timeout(cfn):
    client, stub = cfn
    stub.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": STACK_ID})
    stub.add_response("describe_change_set", {
        "ChangeSetId": CHANGE_SET, "StackId": STACK_ID, "Status": "CREATE_COMPLETE",
        "Changes": []})
    stub.add_response("describe_stack_events", {"StackEvents": []})
    stub.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET})
    in_progress = {"Stacks": [{"StackName": "shop-server", "StackId": STACK_ID,
                               "CreationTime": T0, "StackStatus": "UPDATE_IN_PROGRESS"}]}
    for _ in range(3):  # polls at 0, 300 and 600 s; the third is past the 600 s timeout
        stub.add_response("describe_stack_events", {"StackEvents": []})
        stub.add_response("describe_stacks", in_progress)
    now = [0.0]
    out = io.StringIO()
    waiting = StackDeployer(client, Reporter(out), poll_seconds=300,
                            sleep=lambda seconds: now.__setitem__(0, now[0] + seconds),
                            timeout_seconds=600, clock=lambda: now[0])
    stack = {"StackName": "shop-server", "StackId": STACK_ID, "CreationTime": T0,
             "StackStatus": "UPDATE_COMPLETE", "Parameters": []}

    outcome = waiting.deploy(request(), stack)

    assert (outcome.ok, outcome.failure) == (False, "still UPDATE_IN_PROGRESS after 600 s")
    assert out.getvalue().splitlines()[-1] == (
        "shop-server  still UPDATE_IN_PROGRESS after 600 s; CloudFormation carries on "
        "(watch it with `python -m generator status`)")
