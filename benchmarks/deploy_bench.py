"""`python -m benchmarks deploy`: the real deployer against moto, timed by a latency model.

For each topology (the tests/ops one, and the layered one at DEPLOY_BENCH_SIZES, default
"50 300"), four runs in a row against one moto server, as `deploy` runs in the pipeline
(--poll-seconds 15):

1. first deploy (nothing exists);
2. no-op (the same inputs again);
3. one leaf's image changed (a service nobody calls);
4. every image changed (a merge that changed the one build context all services share).

Each run prints its change sets, CloudFormation calls, all AWS calls, the calls the model
counted as throttled, and the modelled time (benchmarks/deploy_model.py says where each
duration comes from). The first deploy is also run at other --max-parallel values
(DEPLOY_BENCH_PARALLEL, default "8 16 32 64"): the default is chosen from that sweep
(DEPLOY_BENCH_SWEEP_ONLY=1 runs the sweep alone).
The lower bound is the call graph's: the cluster, network and ingress phases, then one
service stack per wave of callees-before-callers (`generator.plan`), each followed by its
bake (`--bake-minutes`, default 5: DEPLOY_BENCH_BAKE_MINUTES; the model answers every
alarm OK, so each changed service bakes the whole time).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from benchmarks import deploy_model
from benchmarks.topologies import layered_topology, to_yaml
from generator.ops.bake import DEFAULT_BAKE_SECONDS

POLL_SECONDS = 15.0  # what the pipeline's Deploy step passes
NEW_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo:{}"


def _client_factory(url: str, model: deploy_model.Model | None):
    import boto3
    from botocore.config import Config

    from tests.ops import conftest

    def client(service: str):
        made = boto3.client(service, region_name=conftest.REGION, endpoint_url=url,
                            config=Config(retries={"mode": "standard"}))
        if model is not None:
            model.attach(made)
        return made
    return client


def _deploy(project, model, url: str, **options) -> bool:
    from generator.ops.deploy import Deployment, DeployOptions
    from generator.ops.report import Reporter
    from tests.ops import conftest

    client = _client_factory(url, model)
    deployment = Deployment(
        client("cloudformation"), project.topology,
        DeployOptions(project.templates, poll_seconds=POLL_SECONDS,
                      permissions_boundary=conftest.BOUNDARY, **options),
        Reporter(open(os.devnull, "w")), ecs=client("ecs"), s3=client("s3"),
        cloudwatch=client("cloudwatch"), sleep=model.clock.sleep, clock=model.clock)
    return deployment.run()


def _reset(url: str) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"),
                           timeout=30).close()


def _project(url: str, root: Path, label: str, text: str):
    from tests.ops import conftest

    directory = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=root))
    return conftest.make_project(directory, _client_factory(url, None), text)


def _leaf(topology) -> str:
    called = {callee for service in topology.services for callee in service.calls}
    return next(s.name for s in topology.services if s.name not in called)


def lower_bound(topology, service_seconds: float, first: bool = True,
                bake_seconds: float = 0.0) -> float:
    """The call graph's critical path. A first deploy: the cluster, network and ingress
    phases, then the longest chain of services each started once its callees are done and
    baked, a cycle taking two service stack operations (the rollout rule's redeploy)
    before its bake. An update of every service stack (`first=False`): that chain alone,
    without redeploys (no endpoint changed). In an update every service of the chain is
    changed, so each adds `bake_seconds`, the last one too (the run ends after its bake);
    a first deploy creates its stacks, which the deployer does not bake
    (DeployOptions.bake_new_stacks)."""
    from generator import plan as plan_module, rollout

    change_set = deploy_model.CHANGE_SET_SECONDS
    phases = sum(deploy_model.STACK_SECONDS[(kind, "create")] + change_set
                 for kind in ("cluster", "network", "ingress")) if first else 0.0
    plan = plan_module.build(topology)
    redeployed = {redeploy.service for wave in rollout.schedule(topology, plan)
                  for redeploy in wave}
    cycle_of = {name: cycle for cycle in plan.cycles for name in cycle}
    step = service_seconds + change_set
    finish: dict[str, float] = {}
    for wave in plan.waves:  # callees first
        for name in wave:
            cycle = cycle_of.get(name, (name,))
            start = max((finish[callee] for member in cycle
                         for callee in topology.service(member).calls
                         if callee not in cycle), default=0.0)
            finish[name] = (start + step * (2 if first and redeployed & set(cycle) else 1)
                            + (0.0 if first else bake_seconds))
    return phases + max(finish.values(), default=0.0)


def measure(url: str, root: Path, label: str, text: str, max_parallel: int,
            service_seconds: float, runs: bool = True,
            bake_seconds: float = DEFAULT_BAKE_SECONDS) -> list[dict]:
    """The four runs (or the first deploy only, `runs=False`), one row each."""
    from tests.ops import conftest

    _reset(url)
    project = _project(url, root, f"{label}-{max_parallel}-{int(service_seconds)}", text)
    model = deploy_model.Model(service_seconds=service_seconds)
    cluster = {"VpcId": project.vpc_id, "PrivateSubnetIds": project.subnets}
    common = {"max_parallel": max_parallel, "cluster_values": cluster,
              "bake_seconds": bake_seconds}
    scenarios = [("first deploy", {"image": conftest.IMAGE})]
    if runs:
        leaf = _leaf(project.topology)
        scenarios += [
            ("no-op", {"image": conftest.IMAGE}),
            (f"one leaf's image ({leaf})", {"image": conftest.IMAGE,
                                            "images": {leaf: NEW_IMAGE.format("leaf")}}),
            ("every image", {"image": NEW_IMAGE.format("all")}),
        ]
    rows = []
    for name, options in scenarios:
        model.reset_counts()
        started = model.clock.now
        ok = _deploy(project, model, url, **common, **options)
        cfn_calls = sum(count for operation, count in model.calls.items()
                        if operation not in ("DescribeServices", "PutObject", "HeadObject",
                                             "DescribeAlarms"))
        rows.append({
            "topology": label, "services": len(project.topology.services), "run": name,
            "max_parallel": max_parallel, "ok": ok,
            "change_sets": model.calls.get("CreateChangeSet", 0),
            "executed": model.calls.get("ExecuteChangeSet", 0),
            "cfn_calls": cfn_calls, "calls": sum(model.calls.values()),
            "throttled": model.throttled,
            "minutes": (model.clock.now - started) / 60,
            "bound": lower_bound(project.topology, service_seconds,
                                 first=name == "first deploy",
                                 bake_seconds=bake_seconds) / 60
            if name in ("first deploy", "every image") else None,
        })
    return rows


def _row(row: dict) -> str:
    bound = f"{row['bound']:.0f}" if row["bound"] is not None else ""
    return (f"| {row['topology']} | {row['run']} | {row['max_parallel']} | "
            f"{row['change_sets']} | {row['executed']} | {row['cfn_calls']:,} | "
            f"{row['calls']:,} | {row['throttled']} | {row['minutes']:.1f} | {bound} |"
            + ("" if row["ok"] else " FAILED"))


HEADER = ("| topology | run | max parallel | change sets | executed | CloudFormation calls | "
          "AWS calls | throttled | modelled min | lower bound min |\n"
          "|---|---|---|---|---|---|---|---|---|---|")


def main() -> int:
    from tests.ops import conftest

    sizes = [int(s) for s in os.environ.get("DEPLOY_BENCH_SIZES", "50 300").split()]
    sweep = [int(p) for p in os.environ.get("DEPLOY_BENCH_PARALLEL", "8 16 32 64").split()]
    from generator.ops.deploy import DEFAULT_MAX_PARALLEL

    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_REGION": conftest.REGION, "AWS_EC2_METADATA_DISABLED": "true"})
    topologies = [("tests-ops", conftest.TOPOLOGY)] + [
        (f"layered{size}", to_yaml(layered_topology(
            size, hub_callers=min(55, size // 3), mutual_pairs=min(12, size // 10))))
        for size in sizes]
    print(f"model: change set {deploy_model.CHANGE_SET_SECONDS:g} s, service stack "
          f"{deploy_model.STACK_SECONDS[('service', 'update')]:g} s (3-6 min: "
          "DEPLOY_BENCH_SERVICE_SECONDS), network and ingress 30 s, "
          f"{deploy_model.CALL_SECONDS:g} s a call, CloudFormation at "
          f"{deploy_model.quotas.CLOUDFORMATION_CALLS_PER_SECOND_ASSUMED:g} calls/s "
          "(assumed); --poll-seconds 15")
    service_seconds = float(os.environ.get("DEPLOY_BENCH_SERVICE_SECONDS",
                                           deploy_model.STACK_SECONDS[("service", "update")]))
    bake_seconds = 60 * float(os.environ.get("DEPLOY_BENCH_BAKE_MINUTES",
                                             DEFAULT_BAKE_SECONDS / 60))
    print(f"bake: {bake_seconds / 60:g} min after each changed service stack, every alarm "
          "OK (DEPLOY_BENCH_BAKE_MINUTES)")
    status = 0
    with tempfile.TemporaryDirectory(prefix="deploy-bench-") as tmp:
        root = Path(tmp)
        process, url = conftest._start_moto(root / "moto.log")
        os.environ["AWS_ENDPOINT_URL"] = url
        try:
            print(HEADER)
            for label, text in ([] if os.environ.get("DEPLOY_BENCH_SWEEP_ONLY")
                                else topologies):
                for row in measure(url, root, label, text, DEFAULT_MAX_PARALLEL,
                                   service_seconds, bake_seconds=bake_seconds):
                    print(_row(row), flush=True)
                    status |= 0 if row["ok"] else 1
            label, text = topologies[-1]
            print(f"\nfirst deploy of {label} by --max-parallel:\n" + HEADER)
            for parallel in sweep:
                for row in measure(url, root, label, text, parallel, service_seconds,
                                   runs=False, bake_seconds=bake_seconds):
                    print(_row(row), flush=True)
        finally:
            conftest._stop(process)
    return status


if __name__ == "__main__":
    sys.exit(main())
