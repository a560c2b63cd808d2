"""Many stack operations at once, each started as soon as what it depends on is done.

`deploy` hands the scheduler jobs: a stack to deploy or delete, and the jobs it must wait
for (its callees' stacks, for a service). A job starts the moment its dependencies are
done and a slot is free (`max_parallel` stacks in flight), not when a whole wave
finishes, so a first deploy takes as long as the call graph's longest chain rather than
rounds of the pool.

Waiting costs a few calls per poll, whatever the number of stacks in flight:
- one ListStacks filtered on the in-progress statuses (paged; summaries only) tells which
  of the waiting stacks are still running
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListStacks.html);
- only a stack that left that list is described, once, and its events read, once;
- a change set is described until it is ready (no batch call exists for those), every
  CHANGE_SET_POLL_SECONDS rather than every stack poll.
All of it runs on one thread: the calls are paced (`Pacer`) to the CloudFormation rate in
`generator.awsfacts.quotas`, and a throttled call is retried by botocore.

When more jobs are ready than slots are free, the one with the longest chain of jobs
waiting behind it starts first (critical-path list scheduling), so the call graph's
deepest path is never queued behind leaves.

A job may also wait on CloudWatch alarms (`AwaitAlarms`: a bake, `generator.ops.bake`):
every such wait in flight is answered by one read of all their alarms a poll
(`read_alarms`, DescribeAlarms by name), not one call per alarm or per bake. A flow that
returns None ends without an outcome (a bake that held).

After the first failure no job starts; the stacks in flight are waited for, so the run
ends with every stack it touched settled and named. Alarm waits in flight end at once:
they change nothing, and what they guard will not start.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from generator.ops.aws import error_code, error_message
from generator.ops.report import Reporter
from generator.ops.stackflow import (
    AwaitChangeSet, AwaitStack, Flow, StackDeployer, StackOutcome, describe_change_set,
)

IN_PROGRESS_STATUSES = (
    "CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "DELETE_IN_PROGRESS", "UPDATE_IN_PROGRESS",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "IMPORT_IN_PROGRESS",
    "IMPORT_ROLLBACK_IN_PROGRESS",
)
# How often a change set is described while CloudFormation makes it (it takes seconds).
CHANGE_SET_POLL_SECONDS = 5.0
# A line naming what is still running, at most this often (seconds on the clock).
HEARTBEAT_SECONDS = 60.0


@dataclass(frozen=True)
class AwaitAlarms:
    """A flow's wait for the next alarm poll; it is sent {alarm name: the alarm as
    DescribeAlarms returns it} for the named alarms that exist."""
    names: tuple[str, ...]
    label: str = ""  # what the heartbeat calls it


@dataclass(frozen=True)
class Job:
    """`start` runs at the job's turn: it returns the stack's flow, or its outcome when no
    wait is needed (nothing to do, or decided at once), or None for "nothing to do"."""
    key: str
    start: Callable[[], "Flow | StackOutcome | None"]
    after: tuple[str, ...] = ()
    # False for a job that changes no stack (a bake): it takes none of the
    # `max_parallel` slots, which are CloudFormation's.
    slot: bool = True


class Pacer:
    """At most `per_second` calls a second, on the given clock: a call waits for its
    slot. One thread only, so no lock."""

    def __init__(self, per_second: float, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.sleep = sleep
        self.clock = clock
        self.next_slot = float("-inf")
        self.calls = 0

    def wait(self, **_) -> None:
        now = self.clock()
        if now < self.next_slot:
            self.sleep(self.next_slot - now)
            now = self.next_slot
        self.next_slot = now + self.interval
        self.calls += 1

    def attach(self, client) -> None:
        """Pace every call `client` makes (botocore's before-call event)."""
        service = client.meta.service_model.service_name
        client.meta.events.register(f"before-call.{service}", self.wait)


_RUNNING = object()  # _advance: the flow waits again


@dataclass
class _Running:
    job: Job
    flow: Flow
    wait: object
    due: float = 0.0  # a change set wait: when to describe it next


@dataclass
class Scheduler:
    cfn: object
    deployer: StackDeployer
    reporter: Reporter
    max_parallel: int = 8
    poll_seconds: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    # Called with the jobs about to start, before the first of them starts: reads what
    # they need in batches (deploy: each service's running desiredCount).
    prefetch: Callable[[Sequence[Job]], None] = lambda jobs: None
    # Stacks described when they settled: name -> the stack (None once deleted).
    settled: dict = field(default_factory=dict)
    # Alarm names -> {name: alarm} for those that exist: one read for every AwaitAlarms
    # in flight, each poll (deploy: generator.ops.bake.read_alarms).
    read_alarms: Callable[[Sequence[str]], dict] | None = None

    def run(self, jobs: Iterable[Job]) -> list[StackOutcome]:
        pending = {job.key: job for job in jobs}
        unknown = {dep for job in pending.values() for dep in job.after} - set(pending)
        if unknown:
            raise ValueError(f"jobs wait for unknown jobs: {', '.join(sorted(unknown))}")
        pending = _longest_chain_first(pending)
        done: set[str] = set()
        running: list[_Running] = []
        outcomes: list[StackOutcome] = []
        failed = False
        last_heartbeat = self.clock()
        self._next_stack_poll = self.clock() + self.poll_seconds
        self._next_alarm_poll = self.clock()
        while True:
            if not failed:
                failed = self._start_ready(pending, done, running, outcomes)
            if failed:
                self._end_alarm_waits(running)
            if not running:
                break
            self._sleep_until_due(running)
            for item, answer in self._poll(running):
                outcome = self._advance(item, answer)
                if outcome is not _RUNNING:
                    running.remove(item)
                    if outcome is not None:
                        outcomes.append(outcome)
                    if outcome is None or outcome.ok:
                        done.add(item.job.key)
                    else:
                        failed = True
            if running and self.clock() - last_heartbeat >= HEARTBEAT_SECONDS:
                last_heartbeat = self.clock()
                names = sorted(item.wait.name if isinstance(item.wait, AwaitStack)
                               else item.wait.label for item in running
                               if isinstance(item.wait, (AwaitStack, AwaitAlarms)))
                if names:
                    self.reporter.say(f"   still running ({len(names)}): "
                                      + ", ".join(names[:8]) + (" ..." if len(names) > 8 else ""))
        if pending and not failed:
            raise RuntimeError("jobs that can never start: " + ", ".join(sorted(pending)))
        return outcomes

    # --- starting ------------------------------------------------------------------------

    def _start_ready(self, pending: dict, done: set, running: list,
                     outcomes: list) -> bool:
        """Start every job whose dependencies are done, while slots are free; a job that
        finishes at once may free others in the same pass. True once a job failed."""
        while True:
            free = self.max_parallel - sum(1 for item in running if item.job.slot)
            # Only as many as may start now: what `prefetch` reads is used at once, not
            # by a job that starts an hour later.
            ready = [job for job in pending.values() if all(dep in done for dep in job.after)]
            ready = ([job for job in ready if job.slot][:max(free, 0)]
                     + [job for job in ready if not job.slot])
            if not ready:
                return False
            self.prefetch(ready)
            progressed = False
            for job in ready:
                del pending[job.key]
                started = job.start()
                if started is None or isinstance(started, StackOutcome):
                    if started is not None:
                        outcomes.append(started)
                        if not started.ok:
                            return True
                    done.add(job.key)
                    progressed = True
                    continue
                item = _Running(job, started, None)
                outcome = self._advance(item, None)
                if outcome is _RUNNING:
                    running.append(item)
                elif outcome is not None:
                    outcomes.append(outcome)
                    if not outcome.ok:
                        return True
                    done.add(job.key)
                    progressed = True
            if not progressed:
                return False

    def _advance(self, item: _Running, answer) -> object:
        """Send the flow its answer; its next wait is kept and _RUNNING returned, or its
        outcome (None: it ended with nothing to report)."""
        try:
            item.wait = item.flow.send(answer)
        except StopIteration as finished:
            return finished.value
        item.due = self.clock() + (self.change_set_poll_seconds
                                   if isinstance(item.wait, AwaitChangeSet) else 0.0)
        return _RUNNING

    @staticmethod
    def _end_alarm_waits(running: list[_Running]) -> None:
        for item in [item for item in running if isinstance(item.wait, AwaitAlarms)]:
            item.flow.close()
            running.remove(item)

    @property
    def change_set_poll_seconds(self) -> float:
        # A change set is ready within seconds; waiting a whole stack poll for it would
        # hold a slot for nothing.
        return min(self.poll_seconds, CHANGE_SET_POLL_SECONDS)

    def _sleep_until_due(self, running: list[_Running]) -> None:
        """Until the first change set is due, or the stacks' next poll."""
        due = [item.due for item in running if isinstance(item.wait, AwaitChangeSet)]
        if any(isinstance(item.wait, AwaitStack) for item in running):
            due.append(self._next_stack_poll)
        if any(isinstance(item.wait, AwaitAlarms) for item in running):
            due.append(self._next_alarm_poll)
        self.sleep(max(0.0, min(due) - self.clock()))

    # --- waiting ---------------------------------------------------------------------------

    def _poll(self, running: list[_Running]) -> list[tuple[_Running, object]]:
        """The waits that ended since the last poll, each with what its flow is sent."""
        answers = []
        now = self.clock()
        for item in running:
            if isinstance(item.wait, AwaitChangeSet) and item.due <= now:
                described = describe_change_set(self.cfn, item.wait.change_set)
                if described["Status"] not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
                    answers.append((item, described))
                else:
                    item.due = self.clock() + self.change_set_poll_seconds
        stacks = [item for item in running if isinstance(item.wait, AwaitStack)]
        if stacks and now >= self._next_stack_poll:
            self._next_stack_poll = now + self.poll_seconds
            busy = self._in_progress()
            for item in stacks:
                wait = item.wait
                timed_out = wait.deadline is not None and self.clock() >= wait.deadline
                if wait.stack_id in busy and not timed_out:
                    continue
                status = self._settle(wait)
                if status.endswith("_IN_PROGRESS") and not timed_out:
                    continue  # the listing was a moment behind
                answers.append((item, status))
        watching = [item for item in running if isinstance(item.wait, AwaitAlarms)]
        if watching and now >= self._next_alarm_poll:
            self._next_alarm_poll = now + self.poll_seconds
            wanted = sorted({name for item in watching for name in item.wait.names})
            alarms = self.read_alarms(wanted) if self.read_alarms else {}
            answers += [(item, {name: alarms[name] for name in item.wait.names
                                if name in alarms}) for item in watching]
        return answers

    def _in_progress(self) -> set[str]:
        ids = set()
        paginator = self.cfn.get_paginator("list_stacks")
        for page in paginator.paginate(StackStatusFilter=list(IN_PROGRESS_STATUSES)):
            ids.update(summary["StackId"] for summary in page.get("StackSummaries", []))
        return ids

    def _settle(self, wait: AwaitStack) -> str:
        """The stack's status now, described once; its new events reported."""
        try:
            stack = self.cfn.describe_stacks(StackName=wait.stack_id)["Stacks"][0]
        except Exception as err:
            if error_code(err) == "ValidationError" and "does not exist" in error_message(err):
                self.settled[wait.name] = None
                return "DELETE_COMPLETE"
            raise
        status = stack["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            self.settled[wait.name] = None if status == "DELETE_COMPLETE" else stack
            self.deployer.report(wait.name, wait.events.read_new())
        return status


def _longest_chain_first(jobs: dict[str, Job]) -> dict[str, Job]:
    """The jobs reordered, longest chain of dependents first (ties: given order)."""
    dependents: dict[str, list[str]] = {key: [] for key in jobs}
    for job in jobs.values():
        for dep in job.after:
            dependents[dep].append(job.key)
    height: dict[str, int] = {}
    for key in reversed(_topological(jobs)):
        height[key] = 1 + max((height[d] for d in dependents[key]), default=0)
    order = {key: index for index, key in enumerate(jobs)}
    return {key: jobs[key] for key in sorted(jobs, key=lambda k: (-height[k], order[k]))}


def _topological(jobs: dict[str, Job]) -> list[str]:
    """Keys with every job after the jobs it waits for; a cycle is an error."""
    ordered: list[str] = []
    state: dict[str, int] = {}
    for root in jobs:
        stack = [(root, iter(jobs[root].after))]
        if state.get(root):
            continue
        state[root] = 1
        while stack:
            key, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                stack.pop()
                state[key] = 2
                ordered.append(key)
            elif state.get(dep) == 1:
                raise ValueError(f"jobs wait for each other: {key} and {dep}")
            elif not state.get(dep):
                state[dep] = 1
                stack.append((dep, iter(jobs[dep].after)))
    return ordered
