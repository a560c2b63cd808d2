"""The bake: after `deploy` changed a service's stack, its alarms are watched before its
callers go on.

What is watched, for a service whose stack this run created or updated (a no-op is not
baked): its own alarms (`<app>-<service>-5xx-rate`, `-latency`, in its service stack) and
the alarm of every edge into it (`<app>-<caller>-to-<service>-5xx-rate`, in its ingress
stack): names from `generator.names`. The bake is a job of the scheduler's graph,
`bake:<service>`, after the service's stack job(s); the service's callers wait for it
instead of the stack, so unrelated branches keep going. Every bake in flight is answered
by the same DescribeAlarms poll (`read_alarms`: by name, 100 names a call, paced with the
CloudFormation calls), every `--poll-seconds`.

ECS rolls a service back itself when one of its DeploymentConfiguration.Alarms goes to
ALARM during its deployment
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html);
the bake adds what ECS cannot: the edges into the service (its callers' view), the time
after ECS called the deployment complete, and stopping the run so the callers are not
deployed onto a callee that went bad.

A breach (any watched alarm in ALARM) fails the bake: no new job starts, and the run
ends in one line naming the alarm and the edge, e.g. `deploy failed: shop-orders: alarm
shop-web-to-orders-5xx-rate is ALARM during the bake (caller web -> orders:8080); callers
of orders were not deployed`.

An alarm already in ALARM when the service's deploy starts: Copilot's manifest reference
(deployment.rollback_alarms, pointing at deployment-alarm-failure.html) says that then
"Amazon ECS will NOT monitor alarms for the duration of that deployment": no rollback on
any of them. The deployer reads the watched alarms' states just before the service's
stack job starts (only for a stack that exists: a new service has no alarms yet), and
lets such an alarm be on one condition: it must leave ALARM within the bake (a
fix-forward of a broken service is deployable), else the run stops, saying it was already
in ALARM before the deploy (a still-broken service stops its callers). Once it has left
ALARM, going back is a breach like any other.

INSUFFICIENT_DATA is not a breach: a new alarm starts there, and a quiet edge stays there.
A bake whose alarms do not exist at all (templates without alarms) ends at its first poll
with a line saying so: there is nothing to wait for.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from generator import names
from generator.awsfacts import quotas
from generator.ops.report import Reporter
from generator.ops.scheduler import AwaitAlarms
from generator.ops.stackflow import StackOutcome
from generator.topology import Topology

# topology.yaml's default (generator.topology.model.Alarms.bake_minutes), in seconds.
DEFAULT_BAKE_SECONDS = 300.0
BREACH = "ALARM"


@dataclass(frozen=True)
class Watched:
    """One alarm a bake watches, and how the failure line names what it watches."""
    name: str
    what: str  # "caller web -> orders:8080", "orders:8080 itself"


@dataclass(frozen=True)
class BakeOutcome(StackOutcome):
    """A bake that failed; `consequence` ends the run's one line."""
    consequence: str = ""


def watched_alarms(topology: Topology, service_name: str) -> list[Watched]:
    """The service's own alarms, then each caller's edge into it."""
    service = topology.service(service_name)
    callee = f"{service.name}:{service.port}"
    own = [Watched(names.service_alarm_name(topology.app, service.name, kind),
                   f"{callee} itself, every caller's requests")
           for kind in names.SERVICE_ALARM_KINDS]
    edges = [Watched(names.edge_alarm_name(topology.app, caller.name, service.name, kind),
                     f"caller {caller.name} -> {callee}")
             for caller in sorted(topology.callers(service), key=lambda s: s.name)
             for kind in names.EDGE_ALARM_KINDS]
    return own + edges


def read_alarms(cloudwatch, alarm_names: Sequence[str]) -> dict[str, dict]:
    """{name: metric alarm} of those that exist: one DescribeAlarms per 100 names (one
    page each: MaxRecords 100). By name, metric alarms only, so the caller's
    cloudwatch:DescribeAlarms can be scoped to the app's alarm ARNs (a composite alarm
    needs the permission on "*": API_DescribeAlarms.html)."""
    batch = quotas.ALARMS_PER_DESCRIBE_ALARMS.limit
    found: dict[str, dict] = {}
    for start in range(0, len(alarm_names), batch):
        chunk = list(alarm_names[start:start + batch])
        token = None
        while True:
            extra = {"NextToken": token} if token else {}
            page = cloudwatch.describe_alarms(AlarmNames=chunk, AlarmTypes=["MetricAlarm"],
                                              MaxRecords=batch, **extra)
            found.update({alarm["AlarmName"]: alarm for alarm in page.get("MetricAlarms", [])})
            token = page.get("NextToken")
            if not token:
                break
    return found


def bake_flow(topology: Topology, service_name: str, seconds: float,
              clock: Callable[[], float], reporter: Reporter,
              before: Mapping[str, str]):
    """The bake as a scheduler flow: yields AwaitAlarms, is sent the alarms that exist;
    returns None when they held for `seconds`, or a failed BakeOutcome.

    `before`: alarm name -> its state when the service's stack job started."""
    service = topology.service(service_name)
    stack_name = topology.stack_name(service)
    watched = watched_alarms(topology, service_name)
    what = {alarm.name: alarm.what for alarm in watched}
    # Already in ALARM before the deploy: given the bake to recover.
    recovering = {name for name, state in before.items() if state == BREACH and name in what}
    callers = sorted(caller.name for caller in topology.callers(service))
    consequence = (f"callers of {service_name} were not deployed" if callers
                   else "later stacks were not deployed")
    started = clock()
    first = True
    reporter.line(stack_name, f"baking {seconds / 60:g} min: watching {len(watched)} "
                              "alarm(s) before its callers go on")
    while True:
        alarms = yield AwaitAlarms(tuple(what), label=f"bake {service_name}")
        if first and not alarms:
            reporter.line(stack_name, "no alarm to watch (none of "
                          + ", ".join(sorted(what)) + " exists): not baked")
            return None
        first = False
        for name in sorted(alarms):
            state = alarms[name].get("StateValue")
            if state != BREACH:
                recovering.discard(name)
            elif name not in recovering:
                failure = f"alarm {name} is ALARM during the bake ({what[name]})"
                reporter.line(stack_name, failure)
                return BakeOutcome(stack_name, "failed", failure=failure,
                                   consequence=consequence)
        if clock() - started >= seconds:
            still = sorted(name for name in recovering
                           if alarms.get(name, {}).get("StateValue") == BREACH)
            if still:
                failure = (f"alarm {still[0]} was already in ALARM before the deploy and "
                           f"still is after the {seconds / 60:g}-minute bake "
                           f"({what[still[0]]})")
                reporter.line(stack_name, failure)
                return BakeOutcome(stack_name, "failed", failure=failure,
                                   consequence=consequence)
            reporter.line(stack_name, f"baked: {len(alarms)} alarm(s) out of ALARM for "
                                      f"{seconds / 60:g} min")
            return None


def states_before(topology: Topology, service_names: Sequence[str],
                  read: Callable[[Sequence[str]], dict], reporter: Reporter
                  ) -> dict[str, dict[str, str]]:
    """{service: {alarm name: state}} of the alarms `bake_flow` will watch, read at once
    (`read`: read_alarms) just before those services' stacks start; each alarm already
    in ALARM gets a line."""
    if not service_names:
        return {}
    watched = {name: [alarm.name for alarm in watched_alarms(topology, name)]
               for name in service_names}
    alarms = read(sorted({n for alarm_names in watched.values() for n in alarm_names}))
    result = {}
    for service_name, alarm_names in watched.items():
        result[service_name] = {n: alarms[n].get("StateValue", "") for n in alarm_names
                                if n in alarms}
        for alarm_name, state in sorted(result[service_name].items()):
            if state == BREACH:
                reporter.line(topology.stack_name(topology.service(service_name)),
                              f"alarm {alarm_name} is already ALARM before the deploy: it "
                              "must leave ALARM within the bake")
    return result
