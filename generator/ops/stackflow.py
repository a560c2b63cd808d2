"""One stack, created or updated through a change set, its events reported as it runs.

The flow is CloudFormation's own: CreateChangeSet (CREATE or UPDATE) -> wait -> describe
-> ExecuteChangeSet -> poll DescribeStackEvents and DescribeStacks until the stack settles.
An empty change set is "no changes": it is deleted and counts as success.

Before that, a stack that already has this run's template, parameter values, tags and role
gets no change set at all (`unchanged`), decided from the DescribeStacks the caller already
made, with no further call: the template by the fingerprint in its Description
(`generator.fingerprint`), the parameters by their real values. Values passed as
UsePreviousValue cannot differ, so they are not compared; a value that does differ, a
console edit of a topology-owned parameter included, means a change set as before.

Over 400 lines because it is one stack's whole life as both drivers run it (the blocking
`deploy`, and `generator.ops.scheduler` with many stacks at once): the states a change set
can start from, create, update, recreate after a failed first create, delete, and the
unchanged check. The events are `generator.ops.stackevents`.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Generator, Mapping

from generator import fingerprint
from generator.ops.aws import error_code, error_message
from generator.ops.stackevents import EventStream
from generator.ops.report import Reporter


class _UsePrevious:
    def __repr__(self) -> str:
        return "PREVIOUS"


# A parameter value meaning "keep what the stack has now" (UsePreviousValue).
PREVIOUS = _UsePrevious()

NO_CHANGES_REASONS = ("didn't contain changes", "No updates are to be performed")
CHANGE_SET_PENDING = ("CREATE_PENDING", "CREATE_IN_PROGRESS")
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]

# Stack states in which an identical template and identical values mean nothing to do: the
# last operation completed as asked (a rolled-back update left other values in place).
SETTLED_STATES = ("CREATE_COMPLETE", "UPDATE_COMPLETE")

# A stack whose first create failed holds nothing worth keeping and can only be deleted
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/troubleshooting.html#troubleshooting-errors-update-rollback-failed
# and the stack status codes in
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html):
# the deployer deletes it and creates it again, so one failed first create never blocks
# later runs.
RECREATED_STATES = ("ROLLBACK_COMPLETE", "CREATE_FAILED", "ROLLBACK_FAILED")
# Stack states a change set cannot start from, and what the operator does about each.
BLOCKED_STATES = {
    "UPDATE_ROLLBACK_FAILED": (
        "an update rollback failed: finish it with `aws cloudformation "
        "continue-update-rollback --stack-name {name}`, then deploy again"),
    "DELETE_FAILED": (
        "a delete failed: delete it again from the console or the CLI, then deploy"),
}


@dataclass(frozen=True)
class AwaitChangeSet:
    """A flow waits for its change set to be ready; it is sent DescribeChangeSet's answer."""
    change_set: str


@dataclass(frozen=True)
class AwaitStack:
    """A flow waits for its stack to settle; it is sent the stack's status: settled, or
    still *_IN_PROGRESS once `deadline` (on the deployer's clock) passed."""
    name: str
    stack_id: str
    events: EventStream
    deadline: float | None = None


class StackBlocked(Exception):
    """The stack is in a state no change set can start from; str() says how to recover."""


@dataclass(frozen=True)
class StackRequest:
    stack_name: str
    # Always the template itself, never UsePreviousTemplate: a stack under the
    # AWS::LanguageExtensions transform may not apply new parameter values on its previous
    # template (transform-aws-languageextensions.html, Remarks).
    template_body: str
    parameters: Mapping[str, object]  # str value, or PREVIOUS
    tags: Mapping[str, str] = field(default_factory=dict)
    # Set for a body over CloudFormation's inline limit: the body was uploaded there.
    template_url: str | None = None


@dataclass(frozen=True)
class Change:
    action: str
    logical_id: str
    resource_type: str
    replacement: str

    def describe(self) -> str:
        replace = "  (replacement)" if self.replacement == "True" else (
            "  (may replace)" if self.replacement == "Conditional" else "")
        return f"{self.action:<6} {self.logical_id} ({self.resource_type}){replace}"


@dataclass(frozen=True)
class StackOutcome:
    stack_name: str
    result: str  # "created", "updated", "deleted", "no changes", "previewed", "declined", "failed"
    changes: tuple[Change, ...] = ()
    failure: str = ""  # "<resource>: <reason>", the first thing that failed
    skipped: bool = False  # "no changes" found without a change set (StackDeployer.unchanged)

    @property
    def ok(self) -> bool:
        return self.result not in ("failed", "declined")


# A stack's steps as a generator (StackDeployer.flow): yields waits, returns the outcome.
Flow = Generator["AwaitChangeSet | AwaitStack", object, "StackOutcome"]


def current_stack(cfn, stack_name: str) -> dict | None:
    """The stack as DescribeStacks returns it, or None when there is none."""
    try:
        return cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except Exception as err:  # botocore ClientError: "Stack with id X does not exist"
        if error_code(err) == "ValidationError" and "does not exist" in error_message(err):
            return None
        raise


def check_deployable(stack: dict | None) -> None:
    if stack is None:
        return
    name, status = stack["StackName"], stack["StackStatus"]
    if status in BLOCKED_STATES:
        raise StackBlocked(f"stack {name} is {status}: {BLOCKED_STATES[status].format(name=name)}")
    if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        raise StackBlocked(f"stack {name} is {status}: another operation is running on it; "
                           "wait for it to finish and deploy again")


def change_set_type(stack: dict | None) -> str:
    # A stack left in REVIEW_IN_PROGRESS by a never-executed CREATE change set has no
    # resources yet; CloudFormation accepts only another CREATE change set for it. A stack
    # whose first create failed is deleted first (StackDeployer.deploy), so what follows is
    # a CREATE too, and its parameters are built for one: nothing can keep a previous value.
    if stack is None or stack["StackStatus"] == "REVIEW_IN_PROGRESS" or recreated(stack):
        return "CREATE"
    return "UPDATE"


def recreated(stack: dict | None) -> bool:
    """True for a stack whose first create failed: the deployer deletes it and creates it
    again (RECREATED_STATES)."""
    return stack is not None and stack["StackStatus"] in RECREATED_STATES


def previous_parameters(stack: dict | None) -> dict[str, str]:
    if stack is None:
        return {}
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}


def stack_outputs(stack: dict | None) -> dict[str, str]:
    """OutputKey -> OutputValue of a stack as DescribeStacks returns it ({} for None)."""
    if not stack:
        return {}
    return {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}


class StackDeployer:
    """Runs the flow of one stack (`deploy`, waiting here), or hands it out as a generator
    (`flow`) for `generator.ops.scheduler` to run beside others; keeps no per-stack state."""

    def __init__(self, cfn, reporter: Reporter, poll_seconds: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep,
                 timeout_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 role_arn: str | None = None):
        self.cfn = cfn
        # CloudFormation acts with this role (the bootstrap stack's deploy role), not with
        # the caller's credentials, for every operation on the stacks it deploys.
        self.role_arn = role_arn
        self.reporter = reporter
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        self.timeout_seconds = timeout_seconds
        self.clock = clock

    def deploy(self, request: StackRequest, stack: dict | None,
               confirm: Callable[[tuple[Change, ...]], bool] | None = None,
               preview: bool = False) -> StackOutcome:
        """`stack` is the stack as it is now (current_stack), so callers read it once.

        `confirm`, if given, sees the change set's changes and says whether to execute it.
        `preview` shows the changes and then deletes the change set, changing nothing.
        Waits here, polling this one stack; `generator.ops.scheduler` runs many `flow`s at
        once instead.
        """
        return self.drive(self.flow(request, stack, confirm, preview))

    def flow(self, request: StackRequest, stack: dict | None,
             confirm: Callable[[tuple[Change, ...]], bool] | None = None,
             preview: bool = False) -> Flow:
        """`deploy`'s steps as a generator: it yields each wait (AwaitChangeSet,
        AwaitStack), is sent what the wait ended with, and returns the StackOutcome."""
        name = request.stack_name
        if recreated(stack) and preview:
            # A change set cannot be made for it (CloudFormation refuses an UPDATE of a
            # ROLLBACK_COMPLETE stack, and a CREATE of a name in use).
            self.reporter.line(name, f"{stack['StackStatus']}: its first create failed; a "
                                     "deploy deletes it and creates it again")
            return StackOutcome(name, "previewed")
        if recreated(stack):
            self.reporter.line(name, f"{stack['StackStatus']}: its first create failed, so "
                                     "it holds nothing; deleting it to create it again")
            deleted = yield from self.delete_flow(name, stack)
            if not deleted.ok:
                return deleted
            stack = None
        try:
            check_deployable(stack)
        except StackBlocked as blocked:
            self.reporter.line(name, str(blocked))
            return StackOutcome(name, "failed", failure=str(blocked))
        if self.unchanged(request, stack):
            self.reporter.line(name, "no changes (the deployed template, parameters and tags "
                                     "are this run's: no change set)")
            return StackOutcome(name, "no changes", skipped=True)
        kind = change_set_type(stack)
        try:
            change_set = self._create_change_set(request, kind)
        except Exception as err:
            # Some endpoints refuse an empty update at CreateChangeSet instead of
            # failing the change set; it is the same "no changes".
            if error_code(err) == "ValidationError" and _no_changes(error_message(err)):
                self.reporter.line(name, "no changes")
                return StackOutcome(name, "no changes")
            raise
        described = yield AwaitChangeSet(change_set)
        if described["Status"] == "FAILED":
            reason = " ".join(described.get("StatusReason", "").split())
            if _no_changes(reason):
                self.cfn.delete_change_set(ChangeSetName=change_set)
                self.reporter.line(name, "no changes")
                return StackOutcome(name, "no changes")
            self.reporter.line(name, f"change set failed: {reason}")
            return StackOutcome(name, "failed", failure=f"change set: {reason}")
        changes = tuple(_changes(described))
        self.reporter.line(name, f"{'creating' if kind == 'CREATE' else 'updating'}: "
                                 f"{len(changes)} resource change(s)")
        for change in changes:
            self.reporter.line(name, "  " + change.describe())
        if preview:
            self._discard(described, kind)
            self.reporter.line(name, "dry run: change set deleted, nothing executed")
            return StackOutcome(name, "previewed", changes)
        if confirm is not None and not confirm(changes):
            self.cfn.delete_change_set(ChangeSetName=described["ChangeSetId"])
            self.reporter.line(name, "not executed; change set deleted")
            return StackOutcome(name, "declined", changes)
        return (yield from self._execute(name, described, kind, changes))

    def unchanged(self, request: StackRequest, stack: dict | None) -> bool:
        """True when `stack` already is what `request` asks for: settled, the same role,
        tags and template, and every value the request gives (not UsePreviousValue)
        already the stack's."""
        if stack is None or stack.get("StackStatus") not in SETTLED_STATES:
            return False
        if self.role_arn and stack.get("RoleARN") != self.role_arn:
            return False
        tags = {t["Key"]: t["Value"] for t in stack.get("Tags", [])}
        if tags != dict(request.tags):
            return False
        live = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
        for key, value in request.parameters.items():
            if value is PREVIOUS:
                if key not in live:
                    return False
            elif live.get(key) != str(value):
                return False
        if set(live) - set(request.parameters):
            return False  # a parameter would fall back to its Default
        # The template: the fingerprint the stack's Description states (DescribeStacks) is
        # the one this body has (generator.fingerprint); a body without one never matches.
        wanted = fingerprint.of_body(request.template_body)
        return wanted is not None and fingerprint.of_description(stack.get("Description")) == wanted

    def delete(self, stack_name: str, stack: dict) -> StackOutcome:
        """Delete a stack and stream its events until it is gone."""
        return self.drive(self.delete_flow(stack_name, stack))

    def delete_flow(self, stack_name: str, stack: dict) -> Flow:
        stack_id = stack["StackId"]
        events = EventStream(self.cfn, stack_id)
        events.skip_existing()
        arguments = {"StackName": stack_id}
        if self.role_arn:
            arguments["RoleARN"] = self.role_arn
        self.cfn.delete_stack(**arguments)
        status = yield AwaitStack(stack_name, stack_id, events, self._deadline())
        if status == "DELETE_COMPLETE":
            self.reporter.line(stack_name, "DELETE_COMPLETE (deleted)")
            return StackOutcome(stack_name, "deleted")
        failure = events.first_failure() or f"{stack_name}: {status}"
        self.reporter.line(stack_name, f"{status}: first failure: {failure}")
        return StackOutcome(stack_name, "failed", failure=failure)

    # --- steps ---------------------------------------------------------------------------

    def _create_change_set(self, request: StackRequest, kind: str) -> str:
        arguments = {
            "StackName": request.stack_name,
            "ChangeSetName": _change_set_name(),
            "ChangeSetType": kind,
            "Parameters": _parameter_list(request.parameters, kind, request.stack_name),
            "Capabilities": CAPABILITIES,
            "Description": "python -m generator deploy",
        }
        if request.template_url is not None:
            arguments["TemplateURL"] = request.template_url
        else:
            arguments["TemplateBody"] = request.template_body
        if self.role_arn:
            arguments["RoleARN"] = self.role_arn
        if request.tags:
            arguments["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(request.tags.items())]
        return self.cfn.create_change_set(**arguments)["Id"]

    def _discard(self, described: dict, kind: str) -> None:
        self.cfn.delete_change_set(ChangeSetName=described["ChangeSetId"])
        if kind == "CREATE":
            # A CREATE change set made an empty stack in REVIEW_IN_PROGRESS; a preview
            # must not leave it behind.
            self.cfn.delete_stack(StackName=described["StackId"])

    def drive(self, flow: Flow) -> StackOutcome:
        """Run one flow to its end, waiting on each of its waits here."""
        answer = None
        while True:
            try:
                wait = flow.send(answer)
            except StopIteration as finished:
                return finished.value
            if isinstance(wait, AwaitChangeSet):
                answer = self._wait_for_change_set(wait.change_set)
            else:
                answer = self._stream_until_settled(wait)

    def _deadline(self) -> float | None:
        return None if self.timeout_seconds is None else self.clock() + self.timeout_seconds

    def _wait_for_change_set(self, change_set: str) -> dict:
        while True:
            described = describe_change_set(self.cfn, change_set)
            if described["Status"] not in CHANGE_SET_PENDING:
                return described
            self.sleep(self.poll_seconds)

    def _execute(self, name: str, described: dict, kind: str,
                 changes: tuple[Change, ...]) -> StackOutcome:
        stack_id = described["StackId"]
        events = EventStream(self.cfn, stack_id)
        events.skip_existing()
        try:
            self.cfn.execute_change_set(ChangeSetName=described["ChangeSetId"])
        except Exception as err:
            if not error_code(err):
                raise
            reason = error_message(err)
            self.reporter.line(name, f"execute failed: {reason}")
            return StackOutcome(name, "failed", changes, failure=f"execute: {reason}")
        status = yield AwaitStack(name, stack_id, events, self._deadline())
        if status.endswith("_IN_PROGRESS"):
            # Only this command stops waiting; CloudFormation carries on with the stack.
            waited = f"still {status} after {self.timeout_seconds:g} s"
            self.reporter.line(name, f"{waited}; CloudFormation carries on (watch it with "
                                     "`python -m generator status`)")
            return StackOutcome(name, "failed", changes, failure=waited)
        if status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            result = "created" if kind == "CREATE" else "updated"
            self.reporter.line(name, f"{status} ({result})")
            return StackOutcome(name, result, changes)
        failure = events.first_failure() or f"{name}: {status}"
        self.reporter.line(name, f"{status}: first failure: {failure}")
        return StackOutcome(name, "failed", changes, failure=failure)

    def _stream_until_settled(self, wait: AwaitStack) -> str:
        """The stack's settled status, or its *_IN_PROGRESS status once the timeout passed."""
        while True:
            self.report(wait.name, wait.events.read_new())
            status = _status(self.cfn, wait.stack_id)
            if not status.endswith("_IN_PROGRESS"):
                # Events written just before the status settled.
                self.report(wait.name, wait.events.read_new())
                return status
            if wait.deadline is not None and self.clock() >= wait.deadline:
                return status
            self.sleep(self.poll_seconds)

    def report(self, name: str, new_events: list[dict]) -> None:
        for event in new_events:
            self.reporter.event(name, event)


def _status(cfn, stack_id: str) -> str:
    try:
        return cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
    except Exception as err:
        # A deleted stack is still described by its id; an endpoint that forgets it has
        # finished deleting it.
        if error_code(err) == "ValidationError" and "does not exist" in error_message(err):
            return "DELETE_COMPLETE"
        raise


def _no_changes(reason: str) -> bool:
    return any(marker in reason for marker in NO_CHANGES_REASONS)


def describe_change_set(cfn, change_set: str) -> dict:
    """DescribeChangeSet with every page of Changes folded into the first."""
    described = cfn.describe_change_set(ChangeSetName=change_set)
    token = described.get("NextToken")
    while token:
        page = cfn.describe_change_set(ChangeSetName=change_set, NextToken=token)
        described.setdefault("Changes", []).extend(page.get("Changes", []))
        token = page.get("NextToken")
    return described


def _changes(described: dict):
    for change in described.get("Changes", []):
        resource = change.get("ResourceChange", {})
        yield Change(
            action=resource.get("Action", "?"),
            logical_id=resource.get("LogicalResourceId", "?"),
            resource_type=resource.get("ResourceType", "?"),
            replacement=str(resource.get("Replacement", "")),
        )


def _parameter_list(parameters: Mapping[str, object], kind: str, stack_name: str) -> list[dict]:
    listed = []
    for key, value in parameters.items():
        if value is PREVIOUS:
            if kind == "CREATE":
                raise ValueError(f"{stack_name}: {key} cannot keep a previous value on create")
            listed.append({"ParameterKey": key, "UsePreviousValue": True})
        else:
            listed.append({"ParameterKey": key, "ParameterValue": str(value)})
    return listed


def _change_set_name() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"generator-deploy-{stamp}-{uuid.uuid4().hex[:6]}"
