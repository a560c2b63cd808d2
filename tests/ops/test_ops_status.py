"""`status` reads the alarms (generator.names, issue 17) and the recent Service Connect
rates, against moto: alarm states, rates from metric data, the number of calls for many
services, --env, and one-line refusals.

moto neither pages DescribeAlarms nor computes percentile statistics (its GetMetricData
fails on a p99 of data it holds), so a Stubber test checks the paging and the p99; the moto
tests put no TargetResponseTime data.
Metrics and dimensions: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/available-metrics.html
(Service Connect: what a service answered, summed over its callers, by TargetDiscoveryName
alone; a caller's view of a callee by ClusterName, ServiceName, TargetDiscoveryName).
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

import generator.ops.aws as aws_module
from generator import topology as topology_module
from generator.ops import health
from tests.ops.conftest import REGION
from tests.ops.test_ops_environments import env_deploy, two_accounts  # noqa: F401 (fixture)


def put_alarm(cloudwatch, name: str, state: str | None) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=name, Namespace="AWS/ECS", MetricName="RequestCount", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    if state:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


def put_counts(cloudwatch, dimensions: dict[str, str], requests: float, errors: float,
               minutes_ago: int = 2) -> None:
    # A minute or two back: moto compares timestamps with an end time cut to the second.
    stamp = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    dims = [{"Name": k, "Value": v} for k, v in dimensions.items()]
    cloudwatch.put_metric_data(Namespace="AWS/ECS", MetricData=[
        {"MetricName": "RequestCount", "Dimensions": dims, "Value": requests, "Timestamp": stamp},
        {"MetricName": "HTTPCode_Target_5XX_Count", "Dimensions": dims, "Value": errors,
         "Timestamp": stamp}])


def rows(out: str, header: str) -> list[list[str]]:
    """The cells of the table whose header line contains `header`, "!!" moved last."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if header in line)
    found = []
    for line in lines[start + 2:]:
        if not line.strip():
            break
        cells = line.split()
        found.append(cells[1:] + ["!!"] if cells[0] == "!!" else cells)
    return found


def services(out: str) -> dict[str, list[str]]:
    return {cells[0]: cells for cells in rows(out, "5XX-RATE  LATENCY")}


def edges(out: str) -> dict[str, list[str]]:
    return {" ".join(cells[:3]): cells[3:] for cells in rows(out, "CALLER -> CALLEE:PORT")}


def test_alarm_states_each_service_and_edge(project, run, boto):
    cloudwatch = boto("cloudwatch")
    put_alarm(cloudwatch, "shop-server-5xx-rate", "OK")
    put_alarm(cloudwatch, "shop-server-latency", "ALARM")
    put_alarm(cloudwatch, "shop-store-5xx-rate", "INSUFFICIENT_DATA")
    put_alarm(cloudwatch, "shop-client-to-server-5xx-rate", "ALARM")
    put_alarm(cloudwatch, "shop-server-to-store-5xx-rate", "OK")
    # Another app's alarm under the same prefix is not ours.
    put_alarm(cloudwatch, "shop-prod-server-latency", "ALARM")

    code, out, err = run(project.cli("status"))

    assert (code, err) == (0, ""), err
    table = services(out)
    assert table["server"][1:3] == ["OK", "ALARM"] and table["server"][-1] == "!!"
    assert table["store"][1:3] == ["NO_DATA", "-"]
    assert table["cache"][1:3] == ["-", "-"]  # not deployed with alarms yet
    assert table["client"][-1] != "!!"
    # In ALARM first; the others in topology order.
    assert list(table) == ["server", "store", "cache", "client"]
    assert [(edge, cells[0]) for edge, cells in edges(out).items()] == [
        ("client -> server:8080", "ALARM"), ("server -> store:8080", "OK"),
        ("server -> client:8080", "-")]
    assert out.splitlines()[-2:] == [
        "alarms: 2 in ALARM, 1 INSUFFICIENT_DATA, 2 OK, 6 not deployed (of 11)",
        "in ALARM: shop-server-latency, shop-client-to-server-5xx-rate"]


def test_rates_come_from_the_service_connect_metrics(project, run, boto):
    assert run(project.first_deploy_argv())[0] == 0
    cloudwatch = boto("cloudwatch")
    server = {"TargetDiscoveryName": "server"}
    put_counts(cloudwatch, server, requests=300, errors=15, minutes_ago=1)
    put_counts(cloudwatch, server, requests=300, errors=15, minutes_ago=3)
    # Outside the 5 minute window: not counted.
    put_counts(cloudwatch, server, requests=9000, errors=9000, minutes_ago=20)
    put_counts(cloudwatch, {"ClusterName": "shop-cluster", "ServiceName": "client",
                            "TargetDiscoveryName": "server"}, requests=100, errors=0)

    code, out, err = run(project.cli("status"))

    assert (code, err) == (0, ""), err
    table = services(out)
    assert table["server"][3:6] == ["120.0", "5.00", "-"]  # 600 in 5 min, 30 of them 5xx
    assert table["store"][3:6] == ["-", "-", "-"]  # no traffic: no rate, not 0 %
    assert edges(out)["client -> server:8080"][1:3] == ["20.0", "0.00"]

    code, out, _ = run(project.cli("status", "--since", "30m"))
    assert code == 0 and "REQ/MIN (30m)" in out
    # 9,600 requests in 30 minutes, 9,030 of them 5xx.
    assert services(out)["server"][3:5] == ["320.0", "94.06"]
    # A window of 4m30s is read as 5 whole minutes, and the rate is per minute of those.
    code, out, _ = run(project.cli("status", "--since", "270s"))
    assert code == 0 and "REQ/MIN (5m)" in out
    assert services(out)["server"][3] == "120.0"


def _many(count: int) -> str:
    """`count` services, each calling the one before it."""
    lines = ["app: big", "namespace: big.local", "services:"]
    for i in range(count):
        lines.append(f"  service-{i:03}:")
        lines.append("    port: 8080")
        if i:
            lines.append(f"    calls: [service-{i - 1:03}]")
    return "\n".join(lines) + "\n"


@pytest.fixture
def counted(boto):
    """A CloudWatch client on moto and a count of its calls by operation."""
    calls: dict[str, int] = {}
    client = boto("cloudwatch")

    def count(model, **_):
        calls[model.name] = calls.get(model.name, 0) + 1

    client.meta.events.register("before-call.cloudwatch", count)
    return client, calls


@pytest.mark.parametrize("services", [40, 300])
def test_many_services_cost_a_call_per_100_alarms_and_per_500_queries(counted, services):
    cloudwatch, calls = counted
    topology = topology_module.parse(_many(services), "topology.yaml")
    put_alarm(cloudwatch, f"big-service-{services - 1:03}-latency", "ALARM")
    calls.clear()

    found = health.gather(cloudwatch, topology, "big-cluster")

    alarms = 2 * services + (services - 1)  # two a service, one an edge
    queries = 3 * services + 2 * (services - 1)
    assert calls == {"DescribeAlarms": math.ceil(alarms / 100),
                     "GetMetricData": math.ceil(queries / 500)}
    assert (calls["DescribeAlarms"], calls["GetMetricData"]) == (
        (2, 1) if services == 40 else (9, 3))
    assert [s.name for s in found.services if s.in_alarm] == [f"service-{services - 1:03}"]
    # Readable at 300: the width does not grow with the number of rows.
    for text in (health.services_table(found), health.edges_table(found),
                 health.summary(found)):
        assert max(map(len, text.splitlines())) <= 100, text[:400]
    assert health.services_table(found).splitlines()[2].startswith("!!  service-")


def test_paging_and_the_p99_as_aws_answers_them():
    """What moto does not model: DescribeAlarms pages (NextToken), percentile statistics,
    and a window that straddles two periods."""
    import boto3
    from botocore.stub import Stubber

    topology = topology_module.parse("app: shop\nnamespace: shop.local\nservices:\n"
                                     "  api: {port: 8080, calls: [db]}\n  db: {port: 5432}\n",
                                     "topology.yaml")
    client = boto3.client("cloudwatch", region_name=REGION, aws_access_key_id="x",
                          aws_secret_access_key="x")
    stubber = Stubber(client)
    wanted = ["shop-api-5xx-rate", "shop-api-latency", "shop-db-5xx-rate", "shop-db-latency",
              "shop-api-to-db-5xx-rate"]
    stubber.add_response("describe_alarms", {"MetricAlarms": [
        {"AlarmName": "shop-api-latency", "StateValue": "ALARM"}], "NextToken": "t"},
        {"AlarmNames": wanted, "MaxRecords": 100})
    stubber.add_response("describe_alarms", {"MetricAlarms": [
        {"AlarmName": "shop-api-to-db-5xx-rate", "StateValue": "OK"}]},
        {"AlarmNames": wanted, "MaxRecords": 100, "NextToken": "t"})
    now = datetime(2026, 12, 4, 3, 0, 30, tzinfo=timezone.utc)
    queries = health.metric_queries(topology, "shop-cluster", 300)
    stubber.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "s0r", "Values": [200.0, 100.0]}, {"Id": "s0e", "Values": [3.0]},
        {"Id": "s0l", "Values": [180.0, 2450.5]}, {"Id": "e0r", "Values": [50.0]}]},
        {"MetricDataQueries": queries, "StartTime": now - timedelta(seconds=300),
         "EndTime": now})
    with stubber:
        found = health.gather(client, topology, "shop-cluster", 300, clock=lambda: now)
    stubber.assert_no_pending_responses()
    api, db = found.services
    assert api.alarms == (("shop-api-5xx-rate", None), ("shop-api-latency", "ALARM"))
    assert api.rates == health.Rates(60.0, 1.0, 2450.5)
    assert db.rates == health.Rates(None, None, None)
    (edge,) = found.edges
    assert (edge.caller, edge.callee, edge.port) == ("api", "db", 5432)
    assert edge.alarms == (("shop-api-to-db-5xx-rate", "OK"),)
    assert edge.rates == health.Rates(10.0, 0.0, None)
    # What is asked: the service's own traffic, and the caller's view of the edge.
    by_id = {q["Id"]: q["MetricStat"] for q in queries}
    assert by_id["s0l"]["Stat"] == "p99" and by_id["s0l"]["Metric"]["MetricName"] == \
        "TargetResponseTime"
    assert by_id["s0r"]["Metric"]["Dimensions"] == [{"Name": "TargetDiscoveryName",
                                                     "Value": "api"}]
    assert by_id["e0e"]["Metric"]["Dimensions"] == [
        {"Name": "ClusterName", "Value": "shop-cluster"},
        {"Name": "ServiceName", "Value": "api"},
        {"Name": "TargetDiscoveryName", "Value": "db"}]
    assert {q["Period"] for q in by_id.values()} == {300}


def test_env_reads_the_environments_account(two_accounts, run, boto):  # noqa: F811
    project, production = two_accounts
    assert run(env_deploy(project, "production"))[0] == 0
    put_alarm(production("cloudwatch"), "shop-production-api-5xx-rate", "ALARM")
    put_alarm(boto("cloudwatch"), "shop-staging-api-5xx-rate", "OK")

    code, out, err = run(project.cli("status", "--env", "production"))

    assert code == 0, err
    assert services(out)["api"][1] == "ALARM"
    assert "in ALARM: shop-production-api-5xx-rate" in out.splitlines()[-1]
    code, out, _ = run(project.cli("status", "--env", "staging"))
    assert services(out)["api"][1] == "OK"


def test_nothing_deployed_shows_every_alarm_missing(project, run):
    code, out, err = run(project.cli("status"))
    assert (code, err) == (0, "")
    assert rows(out, "STACK")[0][:4] == ["store", "does", "not", "exist"]
    assert out.splitlines()[-1] == ("alarms: 0 in ALARM, 0 INSUFFICIENT_DATA, 0 OK, "
                                    "11 not deployed (of 11)")


def test_no_credentials_is_one_line(project, run, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, out, err = run(project.cli("status"))
    assert (code, out) == (2, "")
    assert err.startswith("error: no AWS credentials found") and err.count("\n") == 1


def test_cloudwatch_access_denied_is_one_line_after_the_stacks(project, run, monkeypatch):
    from botocore.stub import Stubber

    real_client = aws_module.Aws.client

    def client(self, service):
        made = real_client(self, service)
        if service == "cloudwatch":
            stub = Stubber(made)
            stub.add_client_error("describe_alarms", "AccessDenied",
                                  "not authorized to perform: cloudwatch:DescribeAlarms", 403)
            stub.activate()
        return made

    monkeypatch.setattr(aws_module.Aws, "client", client)
    code, out, err = run(project.cli("status"))
    assert code == 2 and "SERVICE" in out  # the stacks were shown
    assert err == ("error: access denied: DescribeAlarms: not authorized to perform: "
                   "cloudwatch:DescribeAlarms (check the role or profile's permissions)\n")


@pytest.mark.parametrize("since, words", [("5 minutes", "--since '5 minutes'"),
                                          ("16d", "15 days")])
def test_a_bad_since_is_one_line_and_exit_2(project, run, since, words):
    code, out, err = run(project.cli("status", "--since", since))
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and words in err and err.count("\n") == 1


def test_the_summary_names_the_first_alarms_and_counts_the_rest():
    firing = tuple(health.ServiceHealth(f"s{i}", ((f"app-s{i}-latency", "ALARM"),),
                                        health.Rates()) for i in range(7))
    quiet = (health.ServiceHealth("q", (("app-q-latency", None),), health.Rates()),)
    text = health.summary(health.Health(firing + quiet, (), 300))
    assert text.splitlines() == [
        "alarms: 7 in ALARM, 0 INSUFFICIENT_DATA, 0 OK, 1 not deployed (of 8)",
        "in ALARM: app-s0-latency, app-s1-latency, app-s2-latency, app-s3-latency, "
        "app-s4-latency and 2 more"]
    assert health.summary(health.Health(quiet, (), 300)).count("\n") == 0
