"""Issue 18, item 3: stacks start when what they depend on is done, waits cost a few
calls whatever the number in flight, calls are paced, and throttling is recovered from.

Timing comes from the deploy benchmark's latency model (benchmarks/deploy_model.py) on a
virtual clock: the real deployer against the real moto server, with stacks that take time.
"""
from __future__ import annotations

import json
import os

import pytest

from benchmarks import deploy_model
from generator.ops.deploy import Deployment, DeployOptions
from generator.ops.report import Reporter
from generator.ops.scheduler import Pacer
from tests.ops.conftest import BOUNDARY, IMAGE, make_project
from tests.ops.test_ops_deploy import stack_results

# a and b first; c calls a only, d calls b only: with b slow, c need not wait for b.
DIAMOND = """\
app: shop
namespace: shop.local
services:
  a: {port: 8080}
  b: {port: 8080}
  c: {port: 8080, calls: [a]}
  d: {port: 8080, calls: [b]}
"""


def _deploy(project, boto, model, **options) -> tuple[bool, Deployment]:
    cfn, ecs = boto("cloudformation"), boto("ecs")
    model.attach(cfn)
    model.attach(ecs)
    options = {"image": IMAGE, "poll_seconds": 15, "permissions_boundary": BOUNDARY,
               "cluster_values": {"VpcId": project.vpc_id,
                                  "PrivateSubnetIds": project.subnets}, **options}
    deployment = Deployment(cfn, project.topology,
                            DeployOptions(project.templates, **options),
                            Reporter(open(os.devnull, "w")), ecs=ecs,
                            sleep=model.clock.sleep, clock=model.clock)
    return deployment.run(), deployment


def test_a_caller_starts_when_its_callees_are_done_not_when_a_wave_is(tmp_path, boto):
    project = make_project(tmp_path, boto, DIAMOND)
    model = deploy_model.Model(service_seconds=120,
                               stack_seconds={"shop-b": 600})

    ok, _ = _deploy(project, boto, model)

    assert ok
    started = {name: time for time, name in model.executed}
    ends = model.ends
    # a and b were in flight at once; c started once a was done, while b was still
    # running; d waited for b.
    assert started["shop-b"] < ends["shop-a"] and started["shop-a"] < ends["shop-b"]
    assert ends["shop-a"] <= started["shop-c"] < ends["shop-b"]
    assert started["shop-d"] >= ends["shop-b"]


def test_waiting_on_many_stacks_costs_one_listing_a_poll_not_a_call_per_stack(tmp_path,
                                                                            boto):
    project = make_project(tmp_path, boto, DIAMOND)
    model = deploy_model.Model(service_seconds=600)

    ok, _ = _deploy(project, boto, model)

    assert ok
    executed = model.calls["ExecuteChangeSet"]
    # A stack is described once, when it has settled (plus the bootstrap stack, and the
    # listing's page); polls in between are ListStacks calls.
    assert model.calls["DescribeStacks"] <= executed + 2, model.calls
    polls = model.calls["ListStacks"]
    assert polls >= 600 / 15  # the 10-minute service stacks were waited for
    assert model.calls["DescribeStackEvents"] <= 3 * executed


def test_cloudformation_calls_are_paced_to_the_rate():
    clock = deploy_model.VirtualClock()
    pacer = Pacer(5.0, clock.sleep, clock)
    stamps = []
    for _ in range(11):
        pacer.wait()
        stamps.append(clock.now)
    assert stamps[-1] - stamps[0] == pytest.approx(2.0)
    assert min(b - a for a, b in zip(stamps, stamps[1:])) == pytest.approx(0.2)
    unpaced = Pacer(0, clock.sleep, clock)
    before = clock.now
    for _ in range(100):
        unpaced.wait()
    assert clock.now == before


def test_a_paced_deploy_is_never_throttled_in_the_model_and_an_unpaced_one_is(tmp_path,
                                                                           boto):
    """The model counts a call that finds CloudFormation's (assumed) rate spent."""
    project = make_project(tmp_path, boto, DIAMOND)
    paced = deploy_model.Model(service_seconds=60)
    assert _deploy(project, boto, paced)[0]
    assert paced.throttled == 0 and paced.calls["CreateChangeSet"] >= 13

    (tmp_path / "unpaced").mkdir()
    other = make_project(tmp_path / "unpaced", boto, DIAMOND.replace("app: shop",
                                                                     "app: shop2"))
    unpaced = deploy_model.Model(service_seconds=60)
    assert _deploy(other, boto, unpaced, calls_per_second=0)[0]
    assert unpaced.throttled > 0


THROTTLED = (b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
             b"<Message>Rate exceeded</Message></Error><RequestId>r</RequestId>"
             b"</ErrorResponse>")


class _Raw:
    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_):
        yield self.body


def test_throttled_calls_are_retried_and_the_run_succeeds(project, run, monkeypatch):
    """Every fifth CloudFormation call is answered Throttling once (as AWS answers past
    its rate): botocore's standard retries recover, and the deploy succeeds."""
    import botocore.awsrequest
    import botocore.client

    counter = {"calls": 0, "throttled": 0}
    real_init = botocore.client.BaseClient.__init__

    def throttle_some(request, **_):
        counter["calls"] += 1
        if counter["calls"] % 5 == 0:
            counter["throttled"] += 1
            return botocore.awsrequest.AWSResponse(request.url, 400, {}, _Raw(THROTTLED))
        return None

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        if self.meta.service_model.service_name == "cloudformation":
            self.meta.events.register("before-send.cloudformation", throttle_some)

    monkeypatch.setattr(botocore.client.BaseClient, "__init__", init)

    code, out, err = run(project.first_deploy_argv())

    assert (code, err) == (0, ""), out
    assert counter["throttled"] >= 10
    assert set(stack_results(out).values()) == {"created", "updated"}  # updated: redeploys


def test_one_services_new_image_updates_that_stack_only(project, run, boto, tmp_path):
    """A merge that changed one service's build: its stack alone gets a change set; the
    rollout rule names no redeploy (no endpoint changed), so no caller restarts."""
    assert run(project.first_deploy_argv())[0] == 0
    images = tmp_path / "images.json"
    images.write_text(json.dumps({"store": IMAGE, "cache": IMAGE, "client": IMAGE,
                                  "server": IMAGE.replace("abc123", "def456")}))
    cfn = boto("cloudformation")

    code, out, _ = run(project.deploy_argv("--images", str(images)))

    assert code == 0, out
    results = stack_results(out)
    assert {name for name, result in results.items() if result != "no changes"} == {
        "shop-server"}, results
    assert "forcing a new deployment" not in out
    server = {p["ParameterKey"]: p.get("ParameterValue") for p in cfn.describe_stacks(
        StackName="shop-server")["Stacks"][0]["Parameters"]}
    assert server["ImageUri"].endswith(":def456")


def test_with_one_slot_the_longest_chain_starts_first(tmp_path, boto):
    """b1 and b2 come first in topology.yaml, but a has c waiting behind it."""
    project = make_project(tmp_path, boto, """\
app: shop
namespace: shop.local
services:
  b1: {port: 8080}
  b2: {port: 8080}
  a: {port: 8080}
  c: {port: 8080, calls: [a]}
""")
    model = deploy_model.Model(service_seconds=60)

    ok, _ = _deploy(project, boto, model, max_parallel=1)

    assert ok
    services = [name for _, name in model.executed
                if name in ("shop-a", "shop-b1", "shop-b2", "shop-c")]
    assert services[0] == "shop-a", services
    assert services.index("shop-c") > services.index("shop-a")


def test_the_deploy_benchmark_measures_what_the_readme_quotes(moto, tmp_path):
    """`python -m benchmarks deploy` on the tests/ops topology: its four runs, as the
    README's table reads them, and a first deploy no shorter than the call graph allows."""
    from benchmarks import deploy_bench
    from tests.ops.conftest import TOPOLOGY

    rows = {row["run"].split(" (")[0]: row for row in deploy_bench.measure(
        moto, tmp_path, "tests-ops", TOPOLOGY, 32, 270.0)}

    assert all(row["ok"] and row["throttled"] == 0 for row in rows.values()), rows
    first, noop = rows["first deploy"], rows["no-op"]
    leaf, every = rows["one leaf's image"], rows["every image"]
    assert first["change_sets"] == 1 + 3 * 4 + 2  # cluster, 3 per service, 2 redeploys
    assert first["minutes"] >= first["bound"] > 0
    assert (noop["change_sets"], noop["executed"]) == (0, 0) and noop["minutes"] < 1
    # The leaf's stack, then its 5-minute bake (every alarm OK in the model).
    assert (leaf["change_sets"], leaf["executed"]) == (1, 1)
    assert 5 <= leaf["minutes"] < 6 + 5
    assert leaf["calls"] - leaf["cfn_calls"] >= 5 * 60 / 15  # DescribeAlarms, a poll
    assert every["executed"] == 4 and every["minutes"] >= every["bound"]


def test_a_changed_endpoint_updates_its_stacks_and_the_redeploys_the_rule_names(tmp_path,
                                                                              boto, run):
    """server's port changes: its service and ingress stacks, client's ingress stack (its
    outbound rule to server's port) and service stack (its PeerUrls), and client's
    redeploy (it calls server inside their cycle, so its proxy must learn the new
    endpoint once server's is there); nothing else."""
    from generator import plan, rollout
    from tests.ops.conftest import TOPOLOGY

    project = make_project(tmp_path, boto, TOPOLOGY)
    assert run(project.first_deploy_argv())[0] == 0
    moved = TOPOLOGY.replace("  server:\n    port: 8080", "  server:\n    port: 8081")
    assert moved != TOPOLOGY
    again = make_project(tmp_path, boto, moved)  # the same directory, regenerated
    before = {r.service: r.nonce for wave in rollout.schedule(
        project.topology, plan.build(project.topology)) for r in wave}
    after = {r.service: r.nonce for wave in rollout.schedule(
        again.topology, plan.build(again.topology)) for r in wave}
    named = {name for name in after if after[name] != before.get(name)}
    assert named == {"client"}

    code, out, _ = run(again.deploy_argv())

    assert code == 0, out
    changed = [line.split()[0] for line in out.splitlines()
               if line.split()[1:2] and line.split()[1] in ("updated", "created")]
    # client twice: its own update (its PeerUrls name server's port), which may run
    # beside server's, then the redeploy once both are done.
    assert sorted(changed) == sorted(["shop-server", "shop-server-ingress",
                                      "shop-client-ingress", "shop-client",
                                      "shop-client"]), out
    assert out.index("shop-client          forcing a new deployment") > out.index(
        "shop-server          UPDATE_COMPLETE (updated)")


def test_a_stack_past_its_timeout_fails_the_run_and_its_callers_never_start(tmp_path, boto):
    """--timeout bounds each stack's wait in the scheduler too: the run stops waiting
    (CloudFormation carries on), fails, and starts nothing that needed that stack."""
    project = make_project(tmp_path, boto, DIAMOND)
    model = deploy_model.Model(service_seconds=60, stack_seconds={"shop-a": 3 * 3600})

    ok, deployment = _deploy(project, boto, model, timeout_seconds=600)

    assert not ok
    failed = [o for o in deployment.outcomes if not o.ok]
    assert [(o.stack_name, o.failure) for o in failed] == [
        ("shop-a", "still CREATE_IN_PROGRESS after 600 s")]
    started = {name for _, name in model.executed}
    assert "shop-c" not in started  # c calls a
    # The run gave up at the timeout, not at a's end.
    assert model.clock.now < model.ends["shop-a"]


def test_prefetch_reads_only_for_the_jobs_that_start_now():
    """The running desiredCount is read just before a service stack starts, not for every
    ready job: a job that waits for a slot gets a fresh value at its turn."""
    from generator.ops.scheduler import Job, Scheduler

    batches = []
    started = []
    jobs = [Job(f"service:s{i}", lambda i=i: started.append(i)) for i in range(7)]
    scheduler = Scheduler(cfn=None, deployer=None, reporter=None, max_parallel=3,
                          prefetch=lambda ready: batches.append([j.key for j in ready]))

    assert scheduler.run(jobs) == []
    assert sorted(started) == list(range(7))
    assert all(len(batch) <= 3 for batch in batches) and sum(map(len, batches)) == 7
