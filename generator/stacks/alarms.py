"""The CloudWatch alarms generated from the call graph (issue 17): a service's own, in its
service stack, and the callers' view of each edge into it, in its ingress stack.

Service Connect publishes each edge's traffic in AWS/ECS, per minute
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/available-metrics.html,
"Service Connect metrics"). The metrics about the target's answers, among them
HTTPCode_Target_5XX_Count and TargetResponseTime (milliseconds), are published on the
caller's side only: by TargetDiscoveryName alone (every caller of the service), and by
ClusterName, ServiceName (the caller) and TargetDiscoveryName (one edge); the callee's
side (DiscoveryName) has the connection and request counts, not the answers. So a
service's own alarms read the TargetDiscoveryName-only series, and an edge's the
per-caller series. HTTP metrics need the port mapping's appProtocol, which the service
template sets (rule ServiceConnectTimeoutNeedsAppProtocol).

The TargetDiscoveryName-only series names no cluster: environments that share an account
and Region (and so a discovery name) share it, and their services' own alarms see both
environments' traffic; their edge alarms stay per cluster. Environments in their own
accounts, the usual layout, are unaffected.

- `<app>-<service>-5xx-rate`: 100 x 5xx / requests, by metric math, only in a minute with
  at least AlarmMinimumRequests requests (IF(...), metric-math-syntax.html), so a quiet
  service does not alarm on one error; `<app>-<service>-latency`: TargetResponseTime at
  the topology's percentile. Both are the service's deployment alarms: ECS rolls the
  deployment back when one fires while it runs
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html).
- `<app>-<caller>-to-<callee>-5xx-rate`: the same rate as the caller sees it, one per
  caller (Fn::ForEach over Callers), absent for a service nobody calls (the stand-in
  caller 'none' has no traffic to watch).

Missing data is not breaching: a service without traffic is not failing.
"""
from __future__ import annotations

from troposphere import Equals, If, Join, Not, Parameter, Ref, Sub, cloudwatch, ecs

from generator import names

NAMESPACE = "AWS/ECS"
PERIOD_SECONDS = 60
ERROR_RATE = "AlarmErrorRatePercent"
MINIMUM_REQUESTS = "AlarmMinimumRequests"
LATENCY = "AlarmLatencyMilliseconds"
PERCENTILE = "AlarmLatencyPercentile"
EVALUATION = "AlarmEvaluationMinutes"
ROLLBACK = "AlarmRollback"
ERROR_RATE_ALARM = "ErrorRateAlarm"
LATENCY_ALARM = "LatencyAlarm"
ROLLS_BACK = "RollsBackOnAlarm"
HAS_CALLERS = "HasCallers"
CALLER_ALARM = "CallerErrorRateAlarm"


def rate_parameters() -> list[Parameter]:
    """What both stacks take: the error-rate alarm's threshold and its evaluation."""
    return [
        Parameter(ERROR_RATE, Type="Number", Default="5", MinValue=0, MaxValue=100,
                  Description="Alarm when more than this percentage of a minute's requests "
                              "get a 5xx answer (topology.yaml alarms.error_rate_percent)."),
        Parameter(MINIMUM_REQUESTS, Type="Number", Default="20", MinValue=1,
                  Description="A minute with fewer requests never alarms on its errors "
                              "(alarms.minimum_requests)."),
        Parameter(EVALUATION, Type="Number", Default="3", MinValue=1, MaxValue=1440,
                  Description="Breaching minutes in a row before an alarm fires "
                              "(alarms.evaluation_minutes)."),
    ]


def service_parameters() -> list[Parameter]:
    return rate_parameters() + [
        Parameter(LATENCY, Type="Number", Default="1000", MinValue=1,
                  Description="Alarm when the response time at AlarmLatencyPercentile is "
                              "above this many milliseconds (alarms.latency_ms)."),
        Parameter(PERCENTILE, Type="String", Default="p99",
                  AllowedValues=["p50", "p90", "p95", "p99", "p99.9"],
                  Description="The response-time percentile watched (alarms.latency_percentile)."),
        Parameter(ROLLBACK, Type="String", Default="true", AllowedValues=["true", "false"],
                  Description="true: ECS rolls a deployment back when the service's alarms "
                              "fire during it (alarms.rollback)."),
    ]


def _metric(name: str, dimensions: dict, stat: str | None = None) -> cloudwatch.MetricStat:
    return cloudwatch.MetricStat(
        Metric=cloudwatch.Metric(
            Namespace=NAMESPACE, MetricName=name,
            Dimensions=[cloudwatch.MetricDimension(Name=key, Value=value)
                        for key, value in dimensions.items()]),
        Period=PERIOD_SECONDS, Stat=stat or "Sum")


def error_rate_alarm(logical_id: str, name, dimensions: dict, description,
                     condition: str | None = None) -> cloudwatch.Alarm:
    """100 x 5xx / requests in each minute with enough requests, else 0."""
    extra = {"Condition": condition} if condition else {}
    return cloudwatch.Alarm(
        logical_id,
        AlarmName=name,
        AlarmDescription=description,
        Metrics=[
            cloudwatch.MetricDataQuery(Id="requests", ReturnData=False,
                                       MetricStat=_metric("RequestCount", dimensions)),
            cloudwatch.MetricDataQuery(Id="errors", ReturnData=False,
                                       MetricStat=_metric("HTTPCode_Target_5XX_Count",
                                                          dimensions)),
            cloudwatch.MetricDataQuery(
                Id="rate", ReturnData=True, Label="5xx % of requests",
                Expression=Sub("IF(requests >= ${%s}, 100 * errors / requests, 0)"
                               % MINIMUM_REQUESTS)),
        ],
        ComparisonOperator="GreaterThanThreshold",
        Threshold=Ref(ERROR_RATE),
        EvaluationPeriods=Ref(EVALUATION),
        DatapointsToAlarm=Ref(EVALUATION),
        TreatMissingData="notBreaching",
        **extra,
    )


def service_dimensions() -> dict:
    """Every caller's view of the service, summed by Service Connect."""
    return {"TargetDiscoveryName": Ref("DiscoveryName")}


def service_alarms() -> list[cloudwatch.Alarm]:
    """The service's own alarms."""
    dimensions = service_dimensions()
    latency = cloudwatch.Alarm(
        LATENCY_ALARM,
        AlarmName=Sub(names.service_alarm_name("${%s}" % names.APP_PARAMETER,
                                               "${ServiceName}", "latency")),
        AlarmDescription=Sub("${ServiceName}: response time at ${%s} above ${%s} ms, as "
                             "its callers got it through Service Connect"
                             % (PERCENTILE, LATENCY)),
        Namespace=NAMESPACE, MetricName="TargetResponseTime",
        Dimensions=[cloudwatch.MetricDimension(Name=key, Value=value)
                    for key, value in dimensions.items()],
        ExtendedStatistic=Ref(PERCENTILE), Period=PERIOD_SECONDS, Unit="Milliseconds",
        ComparisonOperator="GreaterThanThreshold",
        Threshold=Ref(LATENCY),
        EvaluationPeriods=Ref(EVALUATION),
        DatapointsToAlarm=Ref(EVALUATION),
        TreatMissingData="notBreaching",
    )
    rate = error_rate_alarm(
        ERROR_RATE_ALARM,
        Sub(names.service_alarm_name("${%s}" % names.APP_PARAMETER, "${ServiceName}",
                                     "5xx-rate")),
        dimensions,
        Sub("${ServiceName}: more than ${%s}%% of its requests answered 5xx (minutes with "
            "at least ${%s} requests)" % (ERROR_RATE, MINIMUM_REQUESTS)))
    return [rate, latency]


def deployment_alarms() -> ecs.DeploymentAlarms:
    """DeploymentConfiguration.Alarms: the service's own two alarms, rollback per topology."""
    return ecs.DeploymentAlarms(
        AlarmNames=[Ref(ERROR_RATE_ALARM), Ref(LATENCY_ALARM)],
        Enable=True,
        Rollback=If(ROLLS_BACK, True, False),
    )


def service_conditions() -> dict:
    return {ROLLS_BACK: Equals(Ref(ROLLBACK), "true")}


def edge_parameters() -> list[Parameter]:
    return rate_parameters() + [
        Parameter("DiscoveryName", Type="String", MaxLength=63,
                  AllowedPattern=r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$",
                  Description="The service's Service Connect discovery name: its callers' "
                              "metrics name it as TargetDiscoveryName.",
                  ConstraintDescription="must be a DNS label"),
    ]


def edge_conditions() -> dict:
    return {HAS_CALLERS: Not(Equals(Join(",", Ref(names.CALLERS_PARAMETER)),
                                    names.NO_CALLERS))}


def caller_alarm(caller: str) -> cloudwatch.Alarm:
    """The edge `caller` -> this service, as the caller sees it; `caller` is the loop's
    `${Caller}`. Only when the service has callers (HAS_CALLERS: the one item is then a
    real caller, never the stand-in)."""
    cluster = Sub("${%s}-cluster" % names.APP_PARAMETER)
    dimensions = {"ClusterName": cluster, "ServiceName": Sub(caller),
                  "TargetDiscoveryName": Ref("DiscoveryName")}
    return error_rate_alarm(
        CALLER_ALARM,
        Sub(names.edge_alarm_name("${%s}" % names.APP_PARAMETER, caller, "${ServiceName}",
                                  "5xx-rate")),
        dimensions,
        Sub("%s -> ${ServiceName}: more than ${%s}%% of the calls answered 5xx, as %s got "
            "them" % (caller, ERROR_RATE, caller)),
        condition=HAS_CALLERS)


def alarm_metrics(topology) -> dict[str, int]:
    """What a deployment's alarms are billed for: alarm metrics per kind (a metric math
    alarm counts each metric it reads, quotas.ALARM_METRIC_MONTHLY_USD). Two per
    error-rate alarm (requests and 5xx), one per latency alarm."""
    edges = sum(len(topology.callers(service)) for service in topology.services)
    return {"service 5xx rate": 2 * len(topology.services),
            "service latency": len(topology.services),
            "edge 5xx rate (callers' view)": 2 * edges}


def monthly_cost_usd(topology) -> float:
    from generator.awsfacts import quotas

    return round(sum(alarm_metrics(topology).values()) * quotas.ALARM_METRIC_MONTHLY_USD, 2)
