"""Issue 17, item 2: after a service stack the run changed, its alarms and those of the
edges into it are watched for a bake time before its callers go on; a breach stops the
run in one line and leaves the callers untouched.

The real `deploy` (CLI and Deployment) against the moto server, on the deploy model's
virtual clock (benchmarks/deploy_model.py): stacks take the time they take on AWS, and
a bake of 5 minutes takes no real time. The alarms are created here with
cloudwatch.put_metric_alarm by the names generator.names fixes (the stand-in templates
have none), and turned to ALARM at a chosen virtual moment with set_alarm_state, from a
botocore hook on the deployer's own DescribeAlarms calls.

Not replayed here: ECS rolling the service back by its DeploymentConfiguration.Alarms
(deployment-alarm-failure.html): moto's ECS has no deployment alarms; the rollback is
the service stack's, not the deployer's.
"""
from __future__ import annotations

import json
import os

import pytest

from benchmarks import deploy_model
from generator import names
from generator.ops import deploy as deploy_module
from generator.ops.deploy import Deployment, DeployOptions
from generator.ops.report import Reporter
from tests.ops.conftest import BOUNDARY, IMAGE, make_project
from tests.ops.test_ops_deploy import stack_results

CHAIN = """\
app: shop
namespace: shop.local
services:
  stock: {port: 8080}
  orders: {port: 8080, calls: [stock]}
  web: {port: 8080, calls: [orders]}
"""
NEW_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo:new"
POLL = 15.0


def _alarm_names(topology) -> list[str]:
    result = []
    for service in topology.services:
        result += [names.service_alarm_name(topology.app, service.name, kind)
                   for kind in names.SERVICE_ALARM_KINDS]
        result += [names.edge_alarm_name(topology.app, caller.name, service.name, kind)
                   for caller in topology.callers(service) for kind in names.EDGE_ALARM_KINDS]
    return result


def _create_alarms(cloudwatch, topology, state: str = "OK") -> list[str]:
    alarm_names = _alarm_names(topology)
    for name in alarm_names:
        cloudwatch.put_metric_alarm(
            AlarmName=name, MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ECS",
            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0,
            ComparisonOperator="GreaterThanOrEqualToThreshold")
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
    return alarm_names


class _Alarms:
    """Sets an alarm's state at a virtual moment: `at(name, state, after_stack, delay)`
    turns `name` to `state` at the first DescribeAlarms `delay` seconds after
    `after_stack`'s last operation ended in the model. Records every DescribeAlarms."""

    def __init__(self, boto, model):
        self.setter = boto("cloudwatch")  # not hooked: its calls are not the deployer's
        self.model = model
        self.plans: list[list] = []
        self.calls: list[tuple[float, tuple[str, ...]]] = []

    def at(self, name: str, state: str, after_stack: str, delay: float) -> None:
        self.plans.append([name, state, after_stack, delay, False])

    def attach(self, client) -> None:
        client.meta.events.register("provide-client-params.monitoring.DescribeAlarms",
                                    self._before)

    def _before(self, params, **_) -> None:
        self.calls.append((self.model.clock.now, tuple(params.get("AlarmNames", ()))))
        for plan in self.plans:
            name, state, stack, delay, done = plan
            end = self.model.ends.get(stack)
            if not done and end is not None and self.model.clock.now >= end + delay:
                self.setter.set_alarm_state(AlarmName=name, StateValue=state,
                                            StateReason="test")
                plan[4] = True


def _virtual_cli(monkeypatch, model, alarms):
    """`python -m generator deploy` with its Deployment on the model's clock and hooks."""
    class Virtual(Deployment):
        def __init__(self, cfn, topology, options, reporter, **clients):
            for client in (cfn, clients.get("ecs"), clients.get("cloudwatch")):
                if client is not None:
                    model.attach(client)
            if clients.get("cloudwatch") is not None:
                alarms.attach(clients["cloudwatch"])
            super().__init__(cfn, topology, options, reporter, sleep=model.clock.sleep,
                             clock=model.clock, **clients)
    monkeypatch.setattr(deploy_module, "Deployment", Virtual)


def _parameter(boto, stack: str, key: str) -> str:
    described = boto("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}[key]


def _status(boto, stack: str) -> str:
    return boto("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]


@pytest.fixture
def chain(tmp_path, boto, run):
    """The chain web -> orders -> stock deployed once (no bake), its alarms OK."""
    project = make_project(tmp_path, boto, CHAIN)
    code, _, err = run(project.first_deploy_argv("--bake-minutes", "0"))
    assert (code, err) == (0, "")
    _create_alarms(boto("cloudwatch"), project.topology)
    return project


def _redeploy(project, run, *extra: str):
    """Every image changed, on the virtual clock (a later --poll-seconds wins)."""
    return run(project.deploy_argv("--image", NEW_IMAGE, "--calls-per-second", "5",
                                   "--poll-seconds", str(POLL), *extra))


def test_a_breach_of_a_services_own_alarm_during_its_bake_stops_the_run_in_one_line(
        chain, boto, run, monkeypatch):
    """The acceptance replay: orders' 5xx-rate alarm goes to ALARM one minute into its
    bake. The run stops with one line naming the alarm; web (its caller) is not updated;
    stock (its callee, baked before) is deployed."""
    model = deploy_model.Model(service_seconds=120)
    alarms = _Alarms(boto, model)
    alarms.at("shop-orders-5xx-rate", "ALARM", "shop-orders", 60)
    _virtual_cli(monkeypatch, model, alarms)

    code, out, err = _redeploy(chain, run)

    assert code == 1
    assert err.splitlines() == [
        "error: deploy failed: shop-orders: alarm shop-orders-5xx-rate is ALARM during the "
        "bake (orders:8080 itself, every caller's requests); callers of orders were not "
        "deployed"]
    assert _parameter(boto, "shop-stock", "ImageUri") == NEW_IMAGE
    assert _parameter(boto, "shop-orders", "ImageUri") == NEW_IMAGE
    assert _parameter(boto, "shop-web", "ImageUri") == IMAGE  # untouched
    assert _status(boto, "shop-web") == "CREATE_COMPLETE"
    assert "shop-web" not in {name for _, name in model.executed}
    # It stopped within a poll of the breach, not after the whole bake.
    breach = model.ends["shop-orders"] + 60
    assert model.clock.now < breach + 2 * POLL
    assert stack_results(out)["shop-orders"] == "failed"


def test_an_edge_breach_names_the_caller_and_the_callee(chain, boto, run, monkeypatch):
    model = deploy_model.Model(service_seconds=120)
    alarms = _Alarms(boto, model)
    alarms.at("shop-web-to-orders-5xx-rate", "ALARM", "shop-orders", 30)
    _virtual_cli(monkeypatch, model, alarms)

    code, _, err = _redeploy(chain, run)

    assert code == 1
    assert err.splitlines() == [
        "error: deploy failed: shop-orders: alarm shop-web-to-orders-5xx-rate is ALARM "
        "during the bake (caller web -> orders:8080); callers of orders were not deployed"]
    assert _parameter(boto, "shop-web", "ImageUri") == IMAGE


def test_callers_start_only_after_the_bake_and_a_clean_bake_lets_the_run_finish(
        chain, boto, run, monkeypatch):
    model = deploy_model.Model(service_seconds=120)
    alarms = _Alarms(boto, model)
    _virtual_cli(monkeypatch, model, alarms)

    code, out, err = _redeploy(chain, run, "--bake-minutes", "3")

    assert (code, err) == (0, "")
    started = {name: time for time, name in model.executed}
    assert started["shop-orders"] >= model.ends["shop-stock"] + 180
    assert started["shop-web"] >= model.ends["shop-orders"] + 180
    assert _parameter(boto, "shop-web", "ImageUri") == NEW_IMAGE
    assert "baked: 3 alarm(s)" in out  # stock: its two own, and orders' edge into it


def test_a_no_op_service_is_not_baked(chain, boto, run, monkeypatch, tmp_path):
    """Only stock's image changes: stock is baked, orders and web (no changes) are not,
    and nothing waits 5 minutes for them."""
    model = deploy_model.Model(service_seconds=120)
    alarms = _Alarms(boto, model)
    _virtual_cli(monkeypatch, model, alarms)
    images = tmp_path / "images.json"
    images.write_text(json.dumps({"stock": NEW_IMAGE}))

    code, out, err = run(chain.deploy_argv("--images", str(images), "--calls-per-second",
                                           "5", "--poll-seconds", str(POLL)))

    assert (code, err) == (0, "")
    assert {name for _, name in model.executed} == {"shop-stock"}
    # Stock's bake, then nothing more: no 5-minute bake of orders or web.
    assert model.ends["shop-stock"] + 300 <= model.clock.now
    assert model.clock.now < model.ends["shop-stock"] + 300 + 3 * POLL
    baked = {line.split()[0] for line in out.splitlines() if "baking" in line}
    assert baked == {"shop-stock"}


def test_an_alarm_already_in_alarm_that_recovers_within_the_bake_lets_the_run_go_on(
        chain, boto, run, monkeypatch):
    """A fix-forward: orders' alarm is ALARM before the deploy (ECS then watches none of
    its alarms, as Copilot's rollback_alarms documents); it returns to OK two minutes
    after orders' stack completed, so web goes on."""
    boto("cloudwatch").set_alarm_state(AlarmName="shop-orders-5xx-rate",
                                       StateValue="ALARM", StateReason="broken")
    model = deploy_model.Model(service_seconds=120)
    alarms = _Alarms(boto, model)
    alarms.at("shop-orders-5xx-rate", "OK", "shop-orders", 120)
    _virtual_cli(monkeypatch, model, alarms)

    code, out, err = _redeploy(chain, run)

    assert (code, err) == (0, "")
    assert "alarm shop-orders-5xx-rate is already ALARM before the deploy" in out
    assert _parameter(boto, "shop-web", "ImageUri") == NEW_IMAGE


def test_an_alarm_already_in_alarm_that_stays_there_stops_the_run(chain, boto, run,
                                                                  monkeypatch):
    boto("cloudwatch").set_alarm_state(AlarmName="shop-orders-latency",
                                       StateValue="ALARM", StateReason="broken")
    model = deploy_model.Model(service_seconds=120)
    alarms = _Alarms(boto, model)
    _virtual_cli(monkeypatch, model, alarms)

    code, _, err = _redeploy(chain, run)

    assert code == 1
    assert err.splitlines() == [
        "error: deploy failed: shop-orders: alarm shop-orders-latency was already in ALARM "
        "before the deploy and still is after the 5-minute bake (orders:8080 itself, every "
        "caller's requests); callers of orders were not deployed"]
    assert _parameter(boto, "shop-orders", "ImageUri") == NEW_IMAGE
    assert _parameter(boto, "shop-web", "ImageUri") == IMAGE
    # It waited the whole bake for a recovery.
    assert model.clock.now >= model.ends["shop-orders"] + 300


def test_an_alarm_that_recovers_and_breaches_again_is_a_breach(chain, boto, run,
                                                               monkeypatch):
    boto("cloudwatch").set_alarm_state(AlarmName="shop-orders-5xx-rate",
                                       StateValue="ALARM", StateReason="broken")
    model = deploy_model.Model(service_seconds=120)
    alarms = _Alarms(boto, model)
    alarms.at("shop-orders-5xx-rate", "OK", "shop-orders", 30)
    alarms.at("shop-orders-5xx-rate", "ALARM", "shop-orders", 120)
    _virtual_cli(monkeypatch, model, alarms)

    code, _, err = _redeploy(chain, run)

    assert code == 1
    assert "alarm shop-orders-5xx-rate is ALARM during the bake" in err
    assert _parameter(boto, "shop-web", "ImageUri") == IMAGE


def test_bake_minutes_0_watches_nothing(chain, boto, run, monkeypatch):
    cloudwatch = boto("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName="shop-orders-5xx-rate", StateValue="ALARM",
                               StateReason="ignored")
    model = deploy_model.Model(service_seconds=120)
    alarms = _Alarms(boto, model)
    _virtual_cli(monkeypatch, model, alarms)

    code, out, err = _redeploy(chain, run, "--bake-minutes", "0")

    assert (code, err) == (0, "")
    assert alarms.calls == [] and "DescribeAlarms" not in model.calls
    started = {name: time for time, name in model.executed}
    assert started["shop-web"] < model.ends["shop-orders"] + 2 * POLL
    assert "baking" not in out


DIAMOND = """\
app: shop
namespace: shop.local
services:
  a: {port: 8080}
  b: {port: 8080}
  c: {port: 8080, calls: [a, b]}
"""


def test_one_describe_alarms_a_poll_answers_every_bake_in_flight(tmp_path, boto):
    """a and b bake at once (a first deploy: no state read before); each poll is one
    DescribeAlarms naming both bakes' alarms, not one call per alarm or per bake."""
    project = make_project(tmp_path, boto, DIAMOND)
    _create_alarms(boto("cloudwatch"), project.topology)
    model = deploy_model.Model(service_seconds=120)
    cfn, ecs, cloudwatch = boto("cloudformation"), boto("ecs"), boto("cloudwatch")
    for client in (cfn, ecs, cloudwatch):
        model.attach(client)
    alarms = _Alarms(boto, model)
    alarms.attach(cloudwatch)
    deployment = Deployment(
        cfn, project.topology,
        DeployOptions(project.templates, image=IMAGE, poll_seconds=POLL,
                      permissions_boundary=BOUNDARY, bake_new_stacks=True,
                      cluster_values={"VpcId": project.vpc_id,
                                      "PrivateSubnetIds": project.subnets}),
        Reporter(open(os.devnull, "w")), ecs=ecs, cloudwatch=cloudwatch,
        sleep=model.clock.sleep, clock=model.clock)

    assert deployment.run()

    times = [time for time, _ in alarms.calls]
    assert model.calls["DescribeAlarms"] == len(alarms.calls)
    # One call a poll: never two within a poll interval.
    assert min(b - a for a, b in zip(times, times[1:])) >= POLL - 1
    both = [call for _, call in alarms.calls
            if "shop-a-5xx-rate" in call and "shop-b-5xx-rate" in call]
    assert both, alarms.calls  # the two bakes overlapped and shared polls
    # Three bakes of 5 minutes, two of them at once: fewer polls than bakes x polls.
    assert len(times) <= 2 * (300 / POLL) + 4
    started = {name: time for time, name in model.executed}
    assert started["shop-c"] >= max(model.ends["shop-a"], model.ends["shop-b"]) + 300


def test_bakes_take_no_stack_slot(tmp_path, boto):
    """With one slot, b's stack starts while a bakes: a bake is not a stack in flight."""
    project = make_project(tmp_path, boto, DIAMOND)
    _create_alarms(boto("cloudwatch"), project.topology)
    model = deploy_model.Model(service_seconds=120)
    cfn, ecs, cloudwatch = boto("cloudformation"), boto("ecs"), boto("cloudwatch")
    for client in (cfn, ecs, cloudwatch):
        model.attach(client)
    deployment = Deployment(
        cfn, project.topology,
        DeployOptions(project.templates, image=IMAGE, poll_seconds=POLL, max_parallel=1,
                      permissions_boundary=BOUNDARY, bake_new_stacks=True,
                      cluster_values={"VpcId": project.vpc_id,
                                      "PrivateSubnetIds": project.subnets}),
        Reporter(open(os.devnull, "w")), ecs=ecs, cloudwatch=cloudwatch,
        sleep=model.clock.sleep, clock=model.clock)

    assert deployment.run()

    started = {name: time for time, name in model.executed}
    first, second = sorted(("shop-a", "shop-b"), key=started.get)
    assert started[second] < model.ends[first] + 300


def test_a_breach_lets_the_stacks_in_flight_finish_and_starts_nothing_more(tmp_path, boto):
    """a's alarm breaches while b's slow stack is still running: b's stack completes (as
    after any failure), c (a's caller) never starts, and b's own bake is not waited for."""
    project = make_project(tmp_path, boto, DIAMOND.replace("c: {port: 8080, calls: [a, b]}",
                                                           "c: {port: 8080, calls: [a]}"))
    _create_alarms(boto("cloudwatch"), project.topology)
    model = deploy_model.Model(service_seconds=120, stack_seconds={"shop-b": 600})
    cfn, ecs, cloudwatch = boto("cloudformation"), boto("ecs"), boto("cloudwatch")
    for client in (cfn, ecs, cloudwatch):
        model.attach(client)
    alarms = _Alarms(boto, model)
    alarms.attach(cloudwatch)
    alarms.at("shop-a-latency", "ALARM", "shop-a", 30)
    deployment = Deployment(
        cfn, project.topology,
        DeployOptions(project.templates, image=IMAGE, poll_seconds=POLL,
                      permissions_boundary=BOUNDARY, bake_new_stacks=True,
                      cluster_values={"VpcId": project.vpc_id,
                                      "PrivateSubnetIds": project.subnets}),
        Reporter(open(os.devnull, "w")), ecs=ecs, cloudwatch=cloudwatch,
        sleep=model.clock.sleep, clock=model.clock)

    assert not deployment.run()

    failed = [o for o in deployment.outcomes if not o.ok]
    assert [(o.stack_name, o.failure) for o in failed] == [
        ("shop-a", "alarm shop-a-latency is ALARM during the bake (a:8080 itself, every "
                   "caller's requests)")]
    assert _status(boto, "shop-b") == "CREATE_COMPLETE"
    assert "shop-c" not in {name for _, name in model.executed}
    # Ended once b's stack settled, not after a bake of b.
    assert model.clock.now < model.ends["shop-b"] + 2 * POLL


def test_a_first_deploy_bakes_nothing(tmp_path, boto):
    """Stacks this run creates have no callers sending them traffic yet (callers come
    after their callees), so the deployer does not bake them (DeployOptions.bake_new_stacks,
    off): no DescribeAlarms, and c starts as soon as a and b are done."""
    project = make_project(tmp_path, boto, DIAMOND)
    _create_alarms(boto("cloudwatch"), project.topology)
    model = deploy_model.Model(service_seconds=120)
    cfn, ecs, cloudwatch = boto("cloudformation"), boto("ecs"), boto("cloudwatch")
    for client in (cfn, ecs, cloudwatch):
        model.attach(client)
    deployment = Deployment(
        cfn, project.topology,
        DeployOptions(project.templates, image=IMAGE, poll_seconds=POLL,
                      permissions_boundary=BOUNDARY,
                      cluster_values={"VpcId": project.vpc_id,
                                      "PrivateSubnetIds": project.subnets}),
        Reporter(open(os.devnull, "w")), ecs=ecs, cloudwatch=cloudwatch,
        sleep=model.clock.sleep, clock=model.clock)

    assert deployment.run()

    assert model.calls.get("DescribeAlarms", 0) == 0
    started = {name: time for time, name in model.executed}
    assert started["shop-c"] < max(model.ends["shop-a"], model.ends["shop-b"]) + 300
