"""`deploy` against a real moto server: first deploy, no-change redeploy, a parameter
change, the console-update rule, a failing stack, the order and the parallel waves."""
from __future__ import annotations

import re

import pytest

from generator import plan, rollout
from generator.ops.deploy import Deployment, DeployOptions
from generator.ops.report import Reporter
from tests.ops.conftest import BOUNDARY

NEW_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo:def456"


def parameters(boto, stack: str) -> dict[str, str]:
    described = boto("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}


def console_update(boto, stack: str, **changed: str) -> None:
    """What the console does: a change set keeping the template and every other value."""
    cfn = boto("cloudformation")
    change_set = cfn.create_change_set(
        StackName=stack, ChangeSetName="console", ChangeSetType="UPDATE", UsePreviousTemplate=True,
        Parameters=[{"ParameterKey": k, "ParameterValue": changed[k]} if k in changed
                    else {"ParameterKey": k, "UsePreviousValue": True}
                    for k in parameters(boto, stack)])["Id"]
    cfn.execute_change_set(ChangeSetName=change_set)


def said(out: str, stack: str, text: str) -> bool:
    """A report line of `stack` (names are padded to the longest stack name) with `text`."""
    return re.search(rf"^{re.escape(stack)} +{re.escape(text)}", out, re.MULTILINE) is not None


def stack_results(out: str) -> dict[str, str]:
    """The summary table's STACK -> RESULT of the last row for each stack."""
    rows = out.split("STACK ", 1)[1].splitlines()[2:]
    return {row.split()[0]: row.split()[1] + (" changes" if row.split()[1] == "no" else "")
            for row in rows if row.startswith("shop-")}


def test_first_deploy_creates_every_stack_with_the_params_files(project, run, boto):
    code, out, err = run(project.first_deploy_argv())

    assert (code, err) == (0, "")
    networks = {f"shop-{s}-{kind}": "created" for s in ("store", "cache", "server", "client")
                for kind in ("network", "ingress")}
    assert stack_results(out) == {"shop-cluster": "created", "shop-store": "created",
                                  "shop-cache": "created", "shop-server": "updated",
                                  "shop-client": "updated", **networks}
    cluster = parameters(boto, "shop-cluster")
    assert cluster["VpcId"] == project.vpc_id
    server = parameters(boto, "shop-server")
    assert server["ImageUri"] == project.image
    assert server["PeerUrls"] == project.params("server")["Parameters"]["PeerUrls"]
    assert server["DesiredCount"] == "1"  # params.initial_values: the topology's count
    # Events were streamed: resource, status, elapsed.
    assert said(out, "shop-store", "+  0s  shop-store") and "CREATE_COMPLETE" in out


def test_first_deploy_redeploys_the_mutual_callers_with_the_rollout_nonce(project, run, boto):
    code, out, _ = run(project.first_deploy_argv())

    assert code == 0
    topology = project.topology
    deploy_plan = plan.build(topology)
    for service in ("server", "client"):
        assert said(out, f"shop-{service}", "forcing a new deployment")
        assert parameters(boto, f"shop-{service}")["DeploymentNonce"] == \
            rollout.nonce(topology, deploy_plan, service)
    for service in ("store", "cache"):  # no same-wave callee: no follow-up
        assert not said(out, f"shop-{service}", "forcing")
        assert parameters(boto, f"shop-{service}")["DeploymentNonce"] == ""


def test_redeploy_without_changes_reports_no_changes_and_succeeds(project, run):
    assert run(project.first_deploy_argv())[0] == 0

    code, out, err = run(project.deploy_argv())

    assert (code, err) == (0, "")
    assert set(stack_results(out).values()) == {"no changes"}
    assert "forcing" not in out  # nonces already match: no task restarts


def test_a_parameter_change_updates_only_that_stack(project, run, boto):
    assert run(project.first_deploy_argv())[0] == 0
    document = project.params("cache")
    document["Parameters"]["PeerTimeoutSeconds"] = "9"
    project.write_params("cache", document)

    code, out, _ = run(project.deploy_argv())

    assert code == 0
    networks = {f"shop-{s}-{kind}": "no changes"
                for s in ("store", "cache", "server", "client") for kind in ("network", "ingress")}
    assert stack_results(out) == {"shop-cluster": "no changes", "shop-store": "no changes",
                                  "shop-cache": "updated", "shop-server": "no changes",
                                  "shop-client": "no changes", **networks}
    assert parameters(boto, "shop-cache")["PeerTimeoutSeconds"] == "9"


def test_dry_run_shows_the_change_and_changes_nothing(project, run, boto):
    assert run(project.first_deploy_argv())[0] == 0
    document = project.params("cache")
    document["Parameters"]["PeerTimeoutSeconds"] = "9"
    project.write_params("cache", document)

    code, out, _ = run(project.deploy_argv("--dry-run"))

    assert code == 0
    assert stack_results(out)["shop-cache"] == "previewed"
    assert said(out, "shop-cache", "dry run: change set deleted, nothing executed")
    assert "dry run complete: nothing was executed" in out
    assert parameters(boto, "shop-cache")["PeerTimeoutSeconds"] != "9"
    pending = [c for c in boto("cloudformation").list_change_sets(StackName="shop-cache")["Summaries"]
               if c["StackName"] == "shop-cache" and c.get("ExecutionStatus") == "AVAILABLE"]
    assert pending == []


def test_dry_run_of_a_first_deploy_leaves_no_stack_behind(project, run, boto):
    code, out, _ = run(project.first_deploy_argv("--dry-run"))

    assert code == 0
    assert said(out, "shop-cluster", "dry run: change set deleted, nothing executed")
    cfn = boto("cloudformation")
    live = [s["StackName"] for s in cfn.list_stacks()["StackSummaries"]
            if s["StackStatus"] not in ("DELETE_COMPLETE",)]
    assert live == [], live
    assert "forcing a new deployment" not in out


def test_a_new_image_updates_every_service_and_keeps_the_carried_values(project, run, boto):
    assert run(project.first_deploy_argv())[0] == 0
    # An operator turns on ECS Exec in the console during an incident. (DesiredCount is
    # the other operator-owned parameter; moto's ECS cannot take it as a string update.)
    console_update(boto, "shop-server", EnableExecuteCommand="true")
    current = parameters(boto, "shop-server")

    code, out, _ = run(project.deploy_argv("--image", NEW_IMAGE))

    assert code == 0
    server = parameters(boto, "shop-server")
    assert server["ImageUri"] == NEW_IMAGE
    assert server["EnableExecuteCommand"] == "true"  # operator-owned: not reset
    assert server["DeploymentNonce"] == current["DeploymentNonce"]  # carried, unchanged
    assert "forcing" not in out


def test_deploying_one_service_deploys_the_cluster_and_that_service_only(project, run, boto):
    code, out, _ = run(project.first_deploy_argv("store"))

    assert code == 0
    assert set(stack_results(out)) == {"shop-cluster", "shop-store-network",
                                       "shop-store-ingress", "shop-store"}


def test_a_failed_stack_stops_the_later_waves(project, run, boto):
    document = project.params("store")
    document["Parameters"]["ClusterStackName"] = "no-such-cluster"
    project.write_params("store", document)

    code, out, err = run(project.first_deploy_argv())

    assert code == 1
    assert err == ("error: deploy failed: shop-store: execute: Cluster not found; later "
                   "stacks were not deployed\n")
    results = stack_results(out)
    assert results["shop-store"] == "failed"
    # server calls store, so it never started (client, in a cycle with server only,
    # waits for no other service and may have run).
    assert "shop-server" not in results


def test_cluster_first_then_callees_before_callers_and_independent_stacks_at_once(
        project, boto):
    """The calls as the client made them: the cluster, then each service's network and
    ingress stacks, callers after their callees, and the cycle's redeploys last."""
    cfn = boto("cloudformation")
    calls: list[tuple[str, str]] = []
    stack_of_change_set = {}

    def record(params, model, **_):
        name = params.get("StackName") or ""
        if model.name == "CreateChangeSet":
            stack_of_change_set[params["ChangeSetName"]] = name
        if model.name == "ExecuteChangeSet":
            # deploy executes by change set ARN: arn:...:changeSet/<name>/<uuid>
            name = next(s for cs, s in stack_of_change_set.items()
                        if f"changeSet/{cs}/" in params["ChangeSetName"])
        calls.append((model.name, name.split("/")[1] if name.startswith("arn:") else name))

    cfn.meta.events.register("provide-client-params.cloudformation.*", record)
    options = DeployOptions(project.templates, image=project.image, poll_seconds=0.01,
                            cluster_values={"VpcId": project.vpc_id,
                                            "PrivateSubnetIds": project.subnets},
                            permissions_boundary=BOUNDARY, calls_per_second=0)
    deployment = Deployment(cfn, project.topology, options, Reporter(open("/dev/null", "w")))

    assert deployment.run()
    executed = [stack for operation, stack in calls if operation == "ExecuteChangeSet"]
    assert executed[0] == "shop-cluster"
    services = ("store", "cache", "server", "client")
    # Every task security group before any ingress stack admits a caller's group, and
    # every caller admitted before any service stack starts tasks.
    assert set(executed[1:5]) == {f"shop-{s}-network" for s in services}
    assert set(executed[5:9]) == {f"shop-{s}-ingress" for s in services}
    services_executed = executed[9:]
    assert sorted(services_executed) == sorted(
        ["shop-store", "shop-cache", "shop-server", "shop-client",
         "shop-server", "shop-client"])  # the last two: the nonce follow-up of the cycle
    # server calls store; the cycle's redeploys follow both of its members' first deploys.
    first = {stack: services_executed.index(stack) for stack in set(services_executed)}
    second = {stack: len(services_executed) - 1 - services_executed[::-1].index(stack)
              for stack in ("shop-server", "shop-client")}
    assert first["shop-store"] < first["shop-server"]
    assert max(first["shop-server"], first["shop-client"]) < min(second.values())
    # server calls store: it starts only once store settled. (Stacks in flight at once:
    # tests/ops/test_ops_schedule.py, where stacks take time.)
    settled = {stack: next(i for i in range(calls.index(("ExecuteChangeSet", stack)),
                                            len(calls))
                           if calls[i] == ("DescribeStacks", stack))
               for stack in ("shop-store",)}
    first_server = next(i for i, call in enumerate(calls)
                        if call == ("CreateChangeSet", "shop-server"))
    assert first_server > settled["shop-store"]


@pytest.mark.parametrize("argv, message", [
    (("--image", NEW_IMAGE),
     "PrivateSubnetIds, VpcId not given: the cluster stack does not exist yet, so pass "
     "--subnets --vpc-id"),
    (("--vpc-id", "vpc-0a1b2c3d", "--subnets", "subnet-0a1b2c3d"),
     "shop-store, shop-cache, shop-server, shop-client: ImageUri not given: the stack "
     "does not exist yet, so pass --images FILE (the build's service -> image map) or "
     "--image URI"),
    (("nosuch",), "unknown service(s): nosuch (known: store, cache, server, client)"),
])
def test_missing_first_deploy_input_is_one_line_and_exit_2(project, run, argv, message):
    code, _, err = run(project.deploy_argv(*argv))

    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def _executed_and_deleted(boto, monkeypatch):
    """(operation, stack) of every CreateChangeSet and DeleteStack, in call order."""
    import botocore.client

    calls = []
    real = botocore.client.BaseClient._make_api_call

    def spy(self, operation, params):
        if operation in ("CreateChangeSet", "DeleteStack"):
            calls.append((operation, params["StackName"].split("/")[1]
                          if params["StackName"].startswith("arn:") else params["StackName"],
                          "TemplateURL" in params))
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    return calls


def test_removing_a_service_deletes_its_stacks_around_the_update_of_the_rest(
        project, run, boto, monkeypatch):
    assert run(project.first_deploy_argv())[0] == 0
    project.topology_path.write_text(project.topology_path.read_text().replace(
        "  cache:\n    port: 6379\n", ""), encoding="utf-8")
    calls = _executed_and_deleted(boto, monkeypatch)

    code, out, err = run(project.deploy_argv())

    assert (code, err) == (0, ""), out
    order = [(operation, stack) for operation, stack, _ in calls]
    # The removed service's service and ingress stacks go first, before the cluster
    # changes; its task security group last, once no callee's rule can still import it.
    assert set(order[:2]) == {("DeleteStack", "shop-cache"), ("DeleteStack", "shop-cache-ingress")}
    # No other stack changes (no service calls cache), and an unchanged stack gets no
    # change set at all (generator.ops.stackflow).
    assert order[2:-1] == []
    assert order[-1] == ("DeleteStack", "shop-cache-network")
    live = {s["StackName"] for s in boto("cloudformation").describe_stacks()["Stacks"]}
    assert not {"shop-cache", "shop-cache-ingress", "shop-cache-network"} & live
    assert {"shop-store", "shop-server", "shop-client", "shop-cluster"} <= live
    assert stack_results(out)["shop-cache"] == "deleted"


def test_deploying_some_services_never_prunes_the_others(project, run, boto):
    assert run(project.first_deploy_argv())[0] == 0
    project.topology_path.write_text(project.topology_path.read_text().replace(
        "  cache:\n    port: 6379\n", ""), encoding="utf-8")

    code, out, _ = run(project.deploy_argv("store"))

    assert code == 0
    live = {s["StackName"] for s in boto("cloudformation").describe_stacks()["Stacks"]}
    assert "shop-cache" in live and "deleted" not in out


def test_a_scaled_out_service_stays_scaled_out_across_a_deploy(project, run, boto):
    """Target tracking sets the ECS service's desiredCount; a deploy must not undo it."""
    assert run(project.first_deploy_argv())[0] == 0
    boto("ecs").update_service(cluster="shop-cluster", service="store", desiredCount=3)

    code, out, _ = run(project.deploy_argv("--image", NEW_IMAGE))

    assert code == 0, out
    assert parameters(boto, "shop-store")["DesiredCount"] == "3"
    (service,) = boto("ecs").describe_services(cluster="shop-cluster",
                                               services=["store"])["services"]
    assert service["desiredCount"] == 3
    # Unscaled services keep theirs, with no change to the parameter.
    assert parameters(boto, "shop-cache")["DesiredCount"] == "1"


def test_a_template_over_51200_bytes_goes_by_s3_url(project, run, boto, monkeypatch, moto):
    # moto's CloudFormation reads a TemplateURL from its own S3 only for a localhost URL.
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.replace("127.0.0.1", "localhost"))
    import json

    cluster = json.loads((project.templates / "cluster.yaml").read_text())
    cluster["Metadata"] = {"Padding": ["x" * 1000] * 60}
    (project.templates / "cluster.yaml").write_text(json.dumps(cluster), encoding="utf-8")
    assert len((project.templates / "cluster.yaml").read_bytes()) > 51_200
    boto("s3").create_bucket(Bucket="shop-templates")
    calls = _executed_and_deleted(boto, monkeypatch)

    code, out, err = run(project.first_deploy_argv("--template-bucket", "shop-templates"))

    assert (code, err) == (0, ""), out
    by_url = {stack for operation, stack, url in calls if operation == "CreateChangeSet" and url}
    assert by_url == {"shop-cluster"}  # the others are small enough to go inline
    (stored,) = boto("s3").list_objects_v2(Bucket="shop-templates")["Contents"]
    assert stored["Key"].startswith("templates/") and stored["Size"] > 51_200


def test_a_template_over_51200_bytes_without_a_bucket_is_one_line(project, run, boto):
    import json

    cluster = json.loads((project.templates / "cluster.yaml").read_text())
    cluster["Metadata"] = {"Padding": ["x" * 1000] * 60}
    (project.templates / "cluster.yaml").write_text(json.dumps(cluster), encoding="utf-8")

    code, _, err = run(project.first_deploy_argv())

    assert code == 2
    assert err.count("\n") == 1 and "51,200-byte inline limit" in err and "--template-bucket" in err
    assert boto("cloudformation").describe_stacks()["Stacks"] == []  # nothing was touched


def test_no_permissions_boundary_is_one_line_before_any_stack_changes(project, run, boto):
    argv = [a for a in project.first_deploy_argv() if a != BOUNDARY]
    argv.remove("--permissions-boundary")

    code, _, err = run(argv)

    assert code == 2 and err.count("\n") == 1
    assert "no permissions boundary" in err and "python -m generator bootstrap" in err
    assert boto("cloudformation").describe_stacks()["Stacks"] == []


def test_deploy_calls_only_what_the_deploy_step_role_is_derived_from(project, run, boto,
                                                                     monkeypatch, moto):
    """Every boto3 call of a first deploy, a redeploy with a removed service, and an S3
    upload is declared in DEPLOY_OPERATIONS, from which pipeline.iam derives the role."""
    from generator.awsfacts import operations
    from iam.recording import BotoCallRecorder

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.replace("127.0.0.1", "localhost"))
    boto("s3").create_bucket(Bucket="shop-templates")
    with BotoCallRecorder().recording() as recorder:
        assert run(project.first_deploy_argv())[0] == 0
        project.topology_path.write_text(project.topology_path.read_text().replace(
            "  cache:\n    port: 6379\n", ""), encoding="utf-8")
        import json

        cluster = json.loads((project.templates / "cluster.yaml").read_text())
        cluster["Metadata"] = {"Padding": ["x" * 1000] * 60}
        (project.templates / "cluster.yaml").write_text(json.dumps(cluster), encoding="utf-8")
        assert run(project.deploy_argv("--template-bucket", "shop-templates"))[0] == 0
    assert {"cloudformation.DeleteStack", "s3.PutObject", "ecs.DescribeServices",
            "cloudformation.CreateChangeSet"} <= recorder.operations
    assert recorder.operations <= operations.DEPLOY_OPERATIONS, (
        recorder.operations - operations.DEPLOY_OPERATIONS)
