"""The real `deploy` against moto, on a virtual clock, with stacks that take the time
they take on AWS: how long a deploy would run, and how many calls it makes.

moto answers every call at once and finishes every stack the moment it starts. This model
sits on the boto3 clients (botocore's after-call events) and makes each answer what it
would be at the virtual time of the call:

- a change set is CREATE_PENDING for CHANGE_SET_SECONDS after CreateChangeSet;
- a stack is *_IN_PROGRESS for its kind's duration (STACK_SECONDS) after ExecuteChangeSet
  or DeleteStack: DescribeStacks says so, and ListStacks lists it;
- every call takes CALL_SECONDS of the caller's time;
- DescribeAlarms (the deployer's bake, generator/ops/bake.py) finds every alarm it names,
  in OK (the stand-in templates create none): a bake lasts its whole bake time, as a
  release that holds would on AWS.

The deployer gets the model's `sleep` and `clock` (Deployment's own parameters), so its
polling and its Pacer run on virtual time: a 300-service first deploy is modelled in a few
minutes of real time, with every call really made against moto.

The CloudFormation rate is CloudFormation's own (assumed, as AWS publishes none:
generator.awsfacts.quotas.CLOUDFORMATION_CALLS_PER_SECOND_ASSUMED): calls are counted in a
token bucket of that rate, and a call that finds it empty is counted as throttled (on AWS
it would be retried by botocore, or fail once its retry quota ran out).

The durations are the constants below, each with where it comes from.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from generator.awsfacts import quotas

# Where each figure comes from. None of these is published by AWS as a number; they are
# what issue 18's model used, so before and after are measured with the same model.
CHANGE_SET_SECONDS = 5.0  # issue 18: "change set ready in ~5 s"
CALL_SECONDS = 0.1  # assumed: a CloudFormation API round trip from CodeBuild in-Region
# (kind, operation) -> seconds; kind from the stack's `kind` tag.
STACK_SECONDS = {
    ("network", "create"): 30.0, ("network", "update"): 30.0,  # issue 18: ~30 s
    ("ingress", "create"): 30.0, ("ingress", "update"): 30.0,  # assumed: rules, as network
    # issue 18: "ECS service stack 3-6 min"; the middle, and both ends with --range.
    ("service", "create"): 270.0, ("service", "update"): 270.0,
    # assumed: an ECS cluster and a Cloud Map namespace, created once.
    ("cluster", "create"): 120.0, ("cluster", "update"): 30.0,
}
DELETE_SECONDS = 60.0  # assumed
BURST = 5  # assumed: the token bucket's depth


@dataclass
class VirtualClock:
    now: float = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    def __call__(self) -> float:
        return self.now


@dataclass
class Model:
    """Hooks a set of boto3 clients; counts calls, throttles and change sets."""
    clock: VirtualClock = field(default_factory=VirtualClock)
    service_seconds: float = STACK_SECONDS[("service", "update")]
    stack_seconds: dict = field(default_factory=dict)  # stack name -> its own duration
    rate: float = quotas.CLOUDFORMATION_CALLS_PER_SECOND_ASSUMED
    calls: dict = field(default_factory=dict)  # operation -> count
    throttled: int = 0
    busy_until: dict = field(default_factory=dict)  # stack id -> (end, in-progress status)
    ready_at: dict = field(default_factory=dict)  # change set id -> time
    executed: list = field(default_factory=list)  # (time, stack name)
    ends: dict = field(default_factory=dict)  # stack name -> when its last operation ends
    kinds: dict = field(default_factory=dict)  # stack name -> kind (from its tags)
    change_sets: dict = field(default_factory=dict)  # id -> (stack id, "create"/"update")
    _tokens: float = BURST
    _refilled: float = 0.0

    def attach(self, client) -> None:
        events = client.meta.events
        service = client.meta.service_model.service_name
        events.register(f"before-parameter-build.{service}", self._keep_params)
        events.register(f"before-call.{service}", self._before)
        if service == "cloudformation":
            events.register("after-call.cloudformation", self._after)
        if service == "cloudwatch":
            events.register("after-call.cloudwatch.DescribeAlarms", self._alarms_ok)

    @staticmethod
    def _keep_params(params, context, **_) -> None:
        context["model_params"] = dict(params)

    def reset_counts(self) -> None:
        self.calls, self.throttled, self.executed = {}, 0, []

    # --- every call ---------------------------------------------------------------------

    def _before(self, model, context, **_) -> None:
        params = context.get("model_params", {})
        self.clock.now += CALL_SECONDS
        self.calls[model.name] = self.calls.get(model.name, 0) + 1
        if model.service_model.service_name == "cloudformation":
            self._take_token()
        if model.name == "CreateChangeSet":
            self.kinds[params["StackName"]] = {
                t["Key"]: t["Value"] for t in params.get("Tags", [])}.get("kind", "service")

    def _take_token(self) -> None:
        now = self.clock.now
        self._tokens = min(BURST, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
        else:
            self.throttled += 1

    # --- what CloudFormation would answer now -------------------------------------------

    def _after(self, model, parsed, context, **_) -> None:
        params = context.get("model_params", {})
        now = self.clock.now
        name = model.name
        if name == "CreateChangeSet":
            self.ready_at[parsed["Id"]] = now + CHANGE_SET_SECONDS
            self.change_sets[parsed["Id"]] = (parsed["StackId"],
                                              params["ChangeSetType"].lower())
        elif name == "DescribeChangeSet":
            if now < self.ready_at.get(parsed.get("ChangeSetId"), 0.0):
                parsed["Status"] = "CREATE_PENDING"
        elif name == "ExecuteChangeSet":
            self._executed(params["ChangeSetName"])
        elif name == "DeleteStack":
            self.busy_until[params["StackName"]] = (now + DELETE_SECONDS, "DELETE_IN_PROGRESS")
        elif name == "DescribeStacks":
            for stack in parsed.get("Stacks", []):
                status = self._in_progress(stack["StackId"])
                if status:
                    stack["StackStatus"] = status
        elif name == "ListStacks":
            listed = {s["StackId"] for s in parsed.get("StackSummaries", [])}
            for stack_id, (end, status) in self.busy_until.items():
                if end > now and stack_id not in listed and stack_id.startswith("arn:"):
                    parsed.setdefault("StackSummaries", []).append(
                        {"StackId": stack_id, "StackName": stack_id.split("/")[1],
                         "StackStatus": status})

    @staticmethod
    def _alarms_ok(parsed, context, **_) -> None:
        params = context.get("model_params", {})
        found = {alarm["AlarmName"] for alarm in parsed.get("MetricAlarms", [])}
        parsed.setdefault("MetricAlarms", []).extend(
            {"AlarmName": name, "StateValue": "OK"}
            for name in params.get("AlarmNames", []) if name not in found)

    def _executed(self, change_set_arn: str) -> None:
        stack_id, operation = self.change_sets[change_set_arn]
        name = stack_id.split("/")[1]
        kind = self.kinds.get(name, "service")
        seconds = self.stack_seconds.get(name, self.service_seconds if kind == "service"
                                         else STACK_SECONDS.get((kind, operation), 30.0))
        status = "CREATE_IN_PROGRESS" if operation == "create" else "UPDATE_IN_PROGRESS"
        self.busy_until[stack_id] = (self.clock.now + seconds, status)
        self.ends[name] = self.clock.now + seconds
        self.executed.append((self.clock.now, name))

    def _in_progress(self, stack_id: str) -> str | None:
        end, status = self.busy_until.get(stack_id, (0.0, ""))
        return status if end > self.clock.now else None
