"""The alarms generated from the call graph (issue 17 items 1, 2 and 5): what topology.yaml
says, what the templates make of it once CloudFormation resolves them (the upgrade model
deploys them from scratch), the deployment alarms, the metric-math quota and the cost."""
from __future__ import annotations

import pytest

from generator import quotacheck, render, topology, upgrade
from generator.quotacheck import QuotaError
from generator.stacks import alarms
from generator.topology import TopologyError
from tests.environments.conftest import TWO_ENVIRONMENTS

TOPOLOGY = """\
app: shop
namespace: shop.local
alarms: {latency_ms: 800}
services:
  web:
    port: 8080
    calls: [orders]
  orders:
    port: 9090
    discovery_name: order-api
    calls: [stock]
    alarms: {error_rate_percent: 1.5, latency_percentile: p95, rollback: false}
  stock:
    port: 7070
"""


def deployed_alarms(tmp_path, text: str, environment: str = "") -> dict[str, dict]:
    """Alarm name -> resolved properties, across every stack of the deployment."""
    loaded = topology.parse(text, "topology.yaml")
    out = tmp_path / "templates"
    render.write(out, render.render(loaded))
    files = upgrade.read_templates_dir(out, environment)
    selected = loaded.in_environment(environment) if environment else loaded
    network = selected.environment.network if environment else None
    setting = (upgrade.Environment(name=environment, project=selected.project_app,
                                   namespace=selected.namespace,
                                   vpc_id=network.vpc_id,
                                   private_subnets=",".join(network.private_subnets))
               if environment else upgrade.Environment())
    account = upgrade.deploy_from_scratch(files, setting)
    found = {}
    for stack in account.stacks.values():
        for resource in stack.resources.values():
            if resource.type == "AWS::CloudWatch::Alarm":
                found[resource.properties["AlarmName"]] = {**resource.properties,
                                                            "_stack": stack.name}
    return found


def dimensions(properties: dict) -> dict[str, str]:
    queries = properties.get("Metrics")
    metric = queries[0]["MetricStat"]["Metric"] if queries else properties
    return {d["Name"]: d["Value"] for d in metric["Dimensions"]}


def test_each_service_and_each_edge_gets_its_alarms(tmp_path):
    found = deployed_alarms(tmp_path, TOPOLOGY)
    assert set(found) == {
        "shop-web-5xx-rate", "shop-web-latency", "shop-orders-5xx-rate", "shop-orders-latency",
        "shop-stock-5xx-rate", "shop-stock-latency",
        # The callers' view, in the callee's ingress stack; web has no caller: no edge alarm.
        "shop-web-to-orders-5xx-rate", "shop-orders-to-stock-5xx-rate"}
    assert found["shop-web-to-orders-5xx-rate"]["_stack"] == "shop-orders-ingress"
    assert found["shop-orders-latency"]["_stack"] == "shop-orders"


def test_the_metrics_are_the_callers_view_by_target_discovery_name(tmp_path):
    """The target's answers (5xx, response time) are published on the caller's side only:
    by TargetDiscoveryName alone for every caller, and per caller with ClusterName and
    ServiceName (available-metrics.html)."""
    found = deployed_alarms(tmp_path, TOPOLOGY)
    assert dimensions(found["shop-orders-5xx-rate"]) == {"TargetDiscoveryName": "order-api"}
    assert dimensions(found["shop-orders-latency"]) == {"TargetDiscoveryName": "order-api"}
    edge = dimensions(found["shop-web-to-orders-5xx-rate"])
    assert edge == {"ClusterName": "shop-cluster", "ServiceName": "web",
                    "TargetDiscoveryName": "order-api"}
    names_ = {q["MetricStat"]["Metric"]["MetricName"] for q in
              found["shop-web-to-orders-5xx-rate"]["Metrics"] if "MetricStat" in q}
    assert names_ == {"RequestCount", "HTTPCode_Target_5XX_Count"}
    latency = found["shop-stock-latency"]
    assert (latency["MetricName"], latency["Namespace"]) == ("TargetResponseTime", "AWS/ECS")


def test_a_quiet_service_does_not_alarm_on_one_error(tmp_path):
    found = deployed_alarms(tmp_path, TOPOLOGY)
    (expression,) = [q["Expression"] for q in found["shop-stock-5xx-rate"]["Metrics"]
                     if "Expression" in q]
    assert expression == "IF(requests >= 20, 100 * errors / requests, 0)"
    assert found["shop-stock-5xx-rate"]["TreatMissingData"] == "notBreaching"


def test_the_topologys_thresholds_reach_the_alarms(tmp_path):
    found = deployed_alarms(tmp_path, TOPOLOGY)
    assert float(found["shop-orders-5xx-rate"]["Threshold"]) == 1.5
    # The edges into orders are judged by orders' own settings.
    assert float(found["shop-web-to-orders-5xx-rate"]["Threshold"]) == 1.5
    assert float(found["shop-stock-5xx-rate"]["Threshold"]) == 5.0
    assert found["shop-orders-latency"]["ExtendedStatistic"] == "p95"
    assert float(found["shop-web-latency"]["Threshold"]) == 800  # the top-level default
    assert found["shop-web-latency"]["ExtendedStatistic"] == "p99"
    assert int(found["shop-web-latency"]["EvaluationPeriods"]) == 3


def test_a_services_own_alarms_roll_its_deployment_back(tmp_path):
    loaded = topology.parse(TOPOLOGY, "topology.yaml")
    out = tmp_path / "templates"
    render.write(out, render.render(loaded))
    account = upgrade.deploy_from_scratch(upgrade.read_templates_dir(out))
    for service, rollback in (("web", True), ("orders", False)):
        (ecs_service,) = [r for r in account.stacks[f"shop-{service}"].resources.values()
                          if r.type == "AWS::ECS::Service"]
        deployment_alarms = ecs_service.properties["DeploymentConfiguration"]["Alarms"]
        assert deployment_alarms["Enable"] is True
        assert deployment_alarms["Rollback"] is rollback
        # Ref of an alarm is its name: the service's own two.
        assert len(deployment_alarms["AlarmNames"]) == 2


def test_names_say_app_environment_caller_and_callee(tmp_path):
    found = deployed_alarms(tmp_path, TWO_ENVIRONMENTS, "production")
    assert "shop-production-web-to-orders-5xx-rate" in found
    assert "shop-production-stock-latency" in found
    assert not any("staging" in name for name in found)


@pytest.mark.parametrize("text, message", [
    ("alarms: {latency_percentile: p42}", "alarms.latency_percentile: 'p42' is not one of"),
    ("alarms: {error_rate_percent: 0}", "alarms.error_rate_percent: 0 is not a percentage"),
    ("alarms: {evaluation_minutes: 0}", "alarms.evaluation_minutes: 0 is outside 1..1440"),
    ("alarms: {page_me: true}", "alarms.page_me: unknown key"),
])
def test_bad_alarm_settings_are_one_line(text, message):
    with pytest.raises(TopologyError) as raised:
        topology.parse(f"app: a\nnamespace: a.b\n{text}\nservices:\n  x: {{port: 1}}\n",
                       "topology.yaml")
    assert str(raised.value).startswith(f"topology.yaml: {message}")


def test_an_environment_overrides_a_services_alarms():
    text = TWO_ENVIRONMENTS.replace("      orders:\n        cpu: 1024",
                                    "      orders:\n        alarms: {latency_ms: 250}\n"
                                    "        cpu: 1024")
    loaded = topology.parse(text, "topology.yaml")
    assert loaded.in_environment("production").service("orders").alarms.latency_ms == 250
    assert loaded.in_environment("staging").service("orders").alarms.latency_ms == 1000


def test_a_math_alarm_over_cloudwatchs_metric_limit_is_refused():
    document = {"Resources": {"Fn::ForEach::Loop": ["X", ["a"], {"Big&{X}": {
        "Type": "AWS::CloudWatch::Alarm", "Properties": {"Metrics": [
            {"Id": f"m{i}", "MetricStat": {}} for i in range(11)] + [
            {"Id": "e", "Expression": "m0"}]}}}]}}
    with pytest.raises(QuotaError, match=r"^ingress.yaml: Big&\{X\} reads 11 metrics, over "
                                         r"CloudWatch's 10 metrics per metric math alarm"):
        quotacheck._check_alarms("ingress.yaml", document)


def test_the_cost_counts_what_the_templates_make(tmp_path):
    """Differential: the cost formula against the alarm metrics the deployed templates
    hold (a math alarm is billed per metric it reads)."""
    found = deployed_alarms(tmp_path, TOPOLOGY)
    billed = sum(len([q for q in p.get("Metrics", []) if "MetricStat" in q]) or 1
                 for p in found.values())
    loaded = topology.parse(TOPOLOGY, "topology.yaml")
    assert sum(alarms.alarm_metrics(loaded).values()) == billed == 13
    assert alarms.monthly_cost_usd(loaded) == 1.30


def test_the_bake_is_each_services_own_unless_the_flag_says(tmp_path):
    """topology.yaml's alarms.bake_minutes per service; --bake-minutes overrides them all."""
    from pathlib import Path

    from generator.ops.bake import DEFAULT_BAKE_SECONDS
    from generator.ops.deploy import Deployment, DeployOptions
    from generator.topology.model import Alarms

    assert Alarms().bake_minutes * 60 == DEFAULT_BAKE_SECONDS
    loaded = topology.parse(TOPOLOGY.replace("alarms: {latency_ms: 800}",
                                             "alarms: {latency_ms: 800, bake_minutes: 2}")
                            .replace("rollback: false}", "rollback: false, bake_minutes: 0}"),
                            "topology.yaml")
    deployment = Deployment.__new__(Deployment)  # only the options and the topology
    deployment.topology = loaded
    deployment.options = DeployOptions(templates_dir=Path("templates"))
    assert [deployment.bake_seconds(s) for s in ("web", "orders")] == [120, 0]
    deployment.options = DeployOptions(templates_dir=Path("templates"), bake_seconds=30)
    assert [deployment.bake_seconds(s) for s in ("web", "orders")] == [30, 30]
