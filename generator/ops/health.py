"""What `status` adds to the stacks and tasks: the state of each service's and edge's alarm
(generator.names, issue 17) and the recent Service Connect rates behind them.

Service Connect publishes in AWS/ECS, every minute, what a service answered as its
callers saw it: summed over every caller by TargetDiscoveryName alone, and per caller by
ClusterName, ServiceName (the caller) and TargetDiscoveryName (the callee's discovery
name): RequestCount, HTTPCode_Target_5XX_Count and TargetResponseTime in milliseconds
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/available-metrics.html; the
same series the alarms read, generator.stacks.alarms).

Reads, whatever the number of services: alarms by name, DescribeAlarms with at most 100
AlarmNames a call (MaxRecords is at most 100 too, so one page per call); metrics with one
GetMetricData call per 500 queries, the most a call takes
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html).
Each query asks one period as long as the whole window, so each returns one value.
An alarm that does not exist (the stack not yet deployed with it) is MISSING, not an error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from generator import names
from generator.ops.report import table
from generator.topology import Topology

NAMESPACE = "AWS/ECS"
REQUESTS = "RequestCount"
ERRORS = "HTTPCode_Target_5XX_Count"
LATENCY = "TargetResponseTime"
LATENCY_STAT = "p99"
ALARM_NAMES_PER_CALL = 100  # DescribeAlarms AlarmNames: at most 100
QUERIES_PER_CALL = 500  # GetMetricData MetricDataQueries: at most 500
DEFAULT_SINCE_SECONDS = 300
# One-minute data points are kept 15 days; a longer window would need another period
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html).
MAX_SINCE_SECONDS = 15 * 86400

ALARM, OK, INSUFFICIENT, MISSING = "ALARM", "OK", "INSUFFICIENT_DATA", None
# How a state reads in a table cell: short, and ALARM unmistakable.
_STATE_CELL = {ALARM: "ALARM", OK: "OK", INSUFFICIENT: "NO_DATA", MISSING: "-"}


@dataclass(frozen=True)
class Rates:
    requests_per_minute: float | None = None
    error_percent: float | None = None
    latency_ms: float | None = None  # p99; None for an edge (its alarm watches 5xx only)


@dataclass(frozen=True)
class ServiceHealth:
    name: str
    alarms: tuple[tuple[str, str | None], ...]  # (alarm name, state or None: missing)
    rates: Rates

    @property
    def in_alarm(self) -> bool:
        return any(state == ALARM for _, state in self.alarms)


@dataclass(frozen=True)
class EdgeHealth:
    caller: str
    callee: str
    port: int
    alarms: tuple[tuple[str, str | None], ...]
    rates: Rates

    @property
    def in_alarm(self) -> bool:
        return any(state == ALARM for _, state in self.alarms)


@dataclass(frozen=True)
class Health:
    services: tuple[ServiceHealth, ...]
    edges: tuple[EdgeHealth, ...]
    since_seconds: int

    def alarms(self) -> list[tuple[str, str | None]]:
        return [a for item in (*self.services, *self.edges) for a in item.alarms]


def service_alarms(topology: Topology, service: str) -> list[str]:
    return [names.service_alarm_name(topology.app, service, kind)
            for kind in names.SERVICE_ALARM_KINDS]


def edge_alarms(topology: Topology, caller: str, callee: str) -> list[str]:
    return [names.edge_alarm_name(topology.app, caller, callee, kind)
            for kind in names.EDGE_ALARM_KINDS]


def edges(topology: Topology) -> list[tuple[str, str]]:
    """(caller, callee) for every `calls:` edge, in topology order."""
    return [(service.name, callee) for service in topology.services for callee in service.calls]


def gather(cloudwatch, topology: Topology, cluster_name: str,
           since_seconds: int = DEFAULT_SINCE_SECONDS,
           clock: Callable[[], datetime] | None = None) -> Health:
    wanted = [name for s in topology.services for name in service_alarms(topology, s.name)]
    wanted += [name for caller, callee in edges(topology)
               for name in edge_alarms(topology, caller, callee)]
    states = alarm_states(cloudwatch, wanted)
    values = metric_values(cloudwatch, metric_queries(topology, cluster_name, since_seconds),
                           since_seconds, clock)
    # The window really read: --since rounded up to whole minutes.
    minutes = period_seconds(since_seconds) / 60

    def rates(key: str, latency: bool) -> Rates:
        requests = values.get(f"{key}r")
        errors = values.get(f"{key}e")
        return Rates(
            requests_per_minute=None if requests is None else requests / minutes,
            # No requests: no rate (a 0 % would read as healthy traffic).
            error_percent=(100.0 * (errors or 0.0) / requests) if requests else None,
            latency_ms=values.get(f"{key}l") if latency else None)

    services = tuple(
        ServiceHealth(s.name, tuple((n, states.get(n)) for n in service_alarms(topology, s.name)),
                      rates(f"s{i}", True))
        for i, s in enumerate(topology.services))
    edge_list = tuple(
        EdgeHealth(caller, callee, topology.service(callee).port,
                   tuple((n, states.get(n)) for n in edge_alarms(topology, caller, callee)),
                   rates(f"e{i}", False))
        for i, (caller, callee) in enumerate(edges(topology)))
    return Health(services, edge_list, since_seconds)


def alarm_problems(cloudwatch, topology: Topology) -> list[tuple[str, str, str, str]]:
    """verify's rows (service, check, found, expected) for every alarm of the deployment in
    ALARM: a service that starts, registers and answers its health check can still fail
    its callers. An alarm not deployed yet, or without data, is not a problem."""
    rows = []
    for service in topology.services:
        for name in service_alarms(topology, service.name):
            rows.append((service.name, name))
    for caller, callee in edges(topology):
        for name in edge_alarms(topology, caller, callee):
            rows.append((callee, name))
    states = alarm_states(cloudwatch, [name for _, name in rows])
    return [(service, "alarm", f"{name}: ALARM", "OK") for service, name in rows
            if states.get(name) == "ALARM"]


# --- reads -----------------------------------------------------------------------------


def alarm_states(cloudwatch, alarm_names: list[str]) -> dict[str, str]:
    """Alarm name -> StateValue for those of `alarm_names` that exist."""
    found: dict[str, str] = {}
    for start in range(0, len(alarm_names), ALARM_NAMES_PER_CALL):
        chunk = alarm_names[start:start + ALARM_NAMES_PER_CALL]
        token = None
        while True:
            request = {"AlarmNames": chunk, "MaxRecords": ALARM_NAMES_PER_CALL}
            if token:
                request["NextToken"] = token
            response = cloudwatch.describe_alarms(**request)
            for alarm in response.get("MetricAlarms", []) + response.get("CompositeAlarms", []):
                found[alarm["AlarmName"]] = alarm["StateValue"]
            token = response.get("NextToken")
            if not token:
                break
    return found


def metric_queries(topology: Topology, cluster_name: str, since_seconds: int) -> list[dict]:
    """The MetricDataQueries: for service i, s<i>r, s<i>e, s<i>l (requests, 5xx, p99);
    for edge i, e<i>r and e<i>e. Ids start with a lowercase letter, as GetMetricData wants."""
    period = period_seconds(since_seconds)
    queries = []
    for i, service in enumerate(topology.services):
        dimensions = {"TargetDiscoveryName": service.discovery_name}
        queries += [_query(f"s{i}r", REQUESTS, dimensions, "Sum", period),
                    _query(f"s{i}e", ERRORS, dimensions, "Sum", period),
                    _query(f"s{i}l", LATENCY, dimensions, LATENCY_STAT, period)]
    for i, (caller, callee) in enumerate(edges(topology)):
        dimensions = {"ClusterName": cluster_name, "ServiceName": caller,
                      "TargetDiscoveryName": topology.service(callee).discovery_name}
        queries += [_query(f"e{i}r", REQUESTS, dimensions, "Sum", period),
                    _query(f"e{i}e", ERRORS, dimensions, "Sum", period)]
    return queries


def period_seconds(since_seconds: int) -> int:
    """The window in whole minutes: a period of data under 15 days old is a multiple of 60."""
    return max(60, math.ceil(since_seconds / 60) * 60)


def _query(query_id: str, metric: str, dimensions: dict[str, str], stat: str,
           period: int) -> dict:
    return {"Id": query_id, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": NAMESPACE, "MetricName": metric,
                   "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()]},
        "Period": period, "Stat": stat}}


def metric_values(cloudwatch, queries: list[dict], since_seconds: int,
                  clock: Callable[[], datetime] | None = None) -> dict[str, float]:
    """Query id -> its value over the window (absent: no data point)."""
    end = (clock or (lambda: datetime.now(timezone.utc)))()
    start = end - timedelta(seconds=period_seconds(since_seconds))
    found: dict[str, float] = {}
    for offset in range(0, len(queries), QUERIES_PER_CALL):
        batch = queries[offset:offset + QUERIES_PER_CALL]
        token = None
        while True:
            request = {"MetricDataQueries": batch, "StartTime": start, "EndTime": end}
            if token:
                request["NextToken"] = token
            response = cloudwatch.get_metric_data(**request)
            for result in response.get("MetricDataResults", []):
                _merge(found, result, batch)
            token = response.get("NextToken")
            if not token:
                break
    return found


def _merge(found: dict[str, float], result: dict, batch: list[dict]) -> None:
    values = [float(v) for v in result.get("Values", [])]
    if not values:
        return
    query_id = result["Id"]
    stat = next(q["MetricStat"]["Stat"] for q in batch if q["Id"] == query_id)
    # A window that straddles a period boundary can come back as two points: counts
    # add up; of two percentiles, the worse one is the honest summary.
    combined = sum(values) if stat == "Sum" else max(values)
    if query_id in found:
        combined = found[query_id] + combined if stat == "Sum" else max(found[query_id], combined)
    found[query_id] = combined


# --- output ----------------------------------------------------------------------------


def _state(state: str | None) -> str:
    return _STATE_CELL.get(state, state or "-")


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _alarm_first(items: Iterable) -> list:
    """Items with an alarm in ALARM first, each group in its given (deploy) order."""
    items = list(items)
    return [i for i in items if i.in_alarm] + [i for i in items if not i.in_alarm]


def _mark(item) -> str:
    # A space, not "": table() writes "-" for an empty cell, and this column should be
    # blank but for the rows an on-call engineer must look at.
    return "!!" if item.in_alarm else " "


def services_table(health: Health) -> str:
    window = _window(health.since_seconds)
    headers = ("", "SERVICE", *[k.upper() for k in names.SERVICE_ALARM_KINDS],
               f"REQ/MIN ({window})", "5XX %", f"{LATENCY_STAT.upper()} MS")
    rows = [(_mark(s), s.name, *[_state(state) for _, state in s.alarms],
             _number(s.rates.requests_per_minute, 1), _number(s.rates.error_percent, 2),
             _number(s.rates.latency_ms))
            for s in _alarm_first(health.services)]
    return table(headers, rows)


def edges_table(health: Health) -> str:
    window = _window(health.since_seconds)
    headers = ("", "CALLER -> CALLEE:PORT", *[k.upper() for k in names.EDGE_ALARM_KINDS],
               f"REQ/MIN ({window})", "5XX %")
    rows = [(_mark(e), f"{e.caller} -> {e.callee}:{e.port}",
             *[_state(state) for _, state in e.alarms],
             _number(e.rates.requests_per_minute, 1), _number(e.rates.error_percent, 2))
            for e in _alarm_first(health.edges)]
    return table(headers, rows)


def summary(health: Health, listed: int = 5) -> str:
    """How many alarms are in each state; then, if any fires, a line naming the first."""
    alarms = health.alarms()
    firing = [name for name, state in alarms if state == ALARM]
    counts = {state: sum(1 for _, s in alarms if s == state)
              for state in (ALARM, INSUFFICIENT, OK, MISSING)}
    text = (f"alarms: {counts[ALARM]} in ALARM, {counts[INSUFFICIENT]} INSUFFICIENT_DATA, "
            f"{counts[OK]} OK, {counts[MISSING]} not deployed (of {len(alarms)})")
    if firing:
        shown = ", ".join(firing[:listed])
        more = f" and {len(firing) - listed} more" if len(firing) > listed else ""
        text += f"\nin ALARM: {shown}{more}"
    return text


def _window(seconds: int) -> str:
    minutes = period_seconds(seconds) // 60
    return f"{minutes}m" if minutes < 60 or minutes % 60 else f"{minutes // 60}h"
