"""The preflight of `deploy` and `bootstrap` (issue 14, findings 12 and 3): every input is
checked before the first AWS write, every problem is one line, exit 2, nothing written.

Every AWS call the command makes is recorded from botocore's `provide-client-params`
event on the clients the command creates (generator.ops.aws.Aws.client), in call order,
with the stack or CA it names, so a test can see what was read and whether anything was
written. moto's server models acm-pca (DescribeCertificateAuthority, ListTags), so the CA
checks run against it.
"""
from __future__ import annotations

import pytest

import generator.ops.aws as aws_module
from generator import params as params_module
from tests.ops.conftest import private_ca
from tests.ops.test_ops_deploy import NEW_IMAGE, parameters

READ_PREFIXES = ("Describe", "List", "Get", "Head")


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str, str]]:
    """(OperationName, the stack or CA it names) of every call, in order."""
    recorded: list[tuple[str, str]] = []
    real_client = aws_module.Aws.client

    def record(params, model, **_):
        target = params.get("StackName") or params.get("CertificateAuthorityArn") or ""
        recorded.append((model.name, target.split("/")[1] if target.startswith(
            "arn:aws:cloudformation") else target))

    def client(self, service):
        made = real_client(self, service)
        made.meta.events.register("provide-client-params.*.*", record)
        return made

    monkeypatch.setattr(aws_module.Aws, "client", client)
    return recorded


def writes(calls) -> list[tuple[str, str]]:
    return [call for call in calls if not call[0].startswith(READ_PREFIXES)]


def add_service(project, name: str) -> None:
    """A new service in topology.yaml, with the params file `generate` writes for it."""
    from generator import topology as topology_module

    project.topology_path.write_text(project.topology_path.read_text()
                                     + f"  {name}:\n    port: 9000\n", encoding="utf-8")
    topology = topology_module.load(project.topology_path)
    project.write_params(name, params_module.configuration(topology, topology.service(name)))


def test_every_problem_is_found_before_anything_is_written(project, run, boto, calls):
    """On main the first of these was found after the cluster and network stacks were
    updated, and the run stopped there with one line."""
    assert run(project.first_deploy_argv())[0] == 0
    before = {s["StackName"]: s.get("LastUpdatedTime") for s in
              boto("cloudformation").describe_stacks()["Stacks"]}
    document = project.params("cache")
    document["Parameters"]["NoSuchParameter"] = "1"  # an unknown key
    project.write_params("cache", document)
    document = project.params("server")
    del document["Parameters"]["ContainerPort"]  # a required parameter (no Default)
    project.write_params("server", document)
    add_service(project, "extra")  # a new service, and no --image this time
    calls.clear()

    code, out, err = run(project.deploy_argv())

    assert code == 2, out + err
    lines = err.splitlines()
    assert all(line.startswith("error: ") for line in lines), err
    assert len(lines) == 3, err
    assert any("cache.json: not parameters of service.yaml: NoSuchParameter" in line
               for line in lines), err
    assert any(line.startswith("error: shop-server: ContainerPort not given: add it to")
               and "server.json" in line for line in lines), err
    assert any(line.startswith("error: shop-extra: ImageUri not given: the stack does not "
                               "exist yet, so pass --images FILE") for line in lines), err
    assert writes(calls) == [], writes(calls)
    after = {s["StackName"]: s.get("LastUpdatedTime") for s in
             boto("cloudformation").describe_stacks()["Stacks"]}
    assert after == before


def test_a_missing_template_and_params_file_and_boundary_are_all_reported(
        project, run, boto, calls):
    (project.templates / "network.yaml").unlink()
    (project.templates / "params" / "store.json").unlink()
    argv = [a for a in project.first_deploy_argv() if a != "--permissions-boundary"
            and not a.startswith("arn:aws:iam::")]

    code, _, err = run(argv)

    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 3, err
    assert any("network.yaml: not found" in line for line in lines)
    assert any("store.json: not found" in line for line in lines)
    assert any("no permissions boundary" in line for line in lines)
    assert writes(calls) == []
    assert boto("cloudformation").describe_stacks()["Stacks"] == []


TLS_TOPOLOGY = """\
app: shop
namespace: shop.local
service_connect_tls:
  private_ca_arn: {ca}
services:
  api:
    port: 8080
  web:
    port: 8080
    calls: [api]
"""


def tls_project(project_factory, boto, **ca):
    return project_factory("tls", TLS_TOPOLOGY.replace("{ca}", private_ca(boto, **ca)),
                           files={".keep": ""})


def test_a_deploy_reads_every_input_before_its_first_write(project_factory, boto, run, calls):
    """The preflight's reads (bootstrap stack, each stack the run deploys, the CA) all
    come before the first write; then the deploy succeeds. The stacks the run deploys are
    read with one paged DescribeStacks of the account (no StackName), not one call each
    (issue 18)."""
    tls = tls_project(project_factory, boto)
    ca = tls.topology.service_connect_tls.private_ca_arn

    code, out, err = run(tls.first_deploy_argv())

    assert (code, err) == (0, ""), out + err
    first_write = calls.index(writes(calls)[0])
    needed = [("DescribeStacks", "shop-bootstrap"), ("DescribeStacks", ""),
              ("DescribeCertificateAuthority", ca), ("ListTags", ca)]
    for read in needed:
        assert read in calls[:first_write], (read, calls[:first_write + 1])
    per_stack = [c for c in calls[:first_write] if c[0] == "DescribeStacks"
                 and c[1] in ("shop-api-network", "shop-web-network", "shop-api-ingress",
                              "shop-web-ingress", "shop-api", "shop-web")]
    assert per_stack == []
    assert parameters(boto, "shop-web")["ServiceConnectTlsCaArn"] == ca


@pytest.mark.parametrize("ca, expected", [
    ({"tags": {}}, "it has no AmazonECSManaged tag; ECS's Service Connect TLS role may use "
                   "only a CA tagged AmazonECSManaged=true: aws acm-pca "
                   "tag-certificate-authority --certificate-authority-arn {arn} "
                   "--tags Key=AmazonECSManaged,Value=true"),
    ({"tags": {"AmazonECSManaged": "false"}}, "it has AmazonECSManaged=false;"),
    ({"status": "DISABLED"}, "the CA is DISABLED, not ACTIVE, so ECS cannot issue Service "
                             "Connect certificates from it: enable it: aws acm-pca "
                             "update-certificate-authority --certificate-authority-arn {arn} "
                             "--status ACTIVE"),
    ({"status": "PENDING_CERTIFICATE"}, "the CA is PENDING_CERTIFICATE, not ACTIVE"),
])
def test_deploy_refuses_a_ca_ecs_cannot_use_in_one_line(project_factory, boto, run, calls,
                                                        ca, expected):
    tls = tls_project(project_factory, boto, **ca)
    arn = tls.topology.service_connect_tls.private_ca_arn

    code, _, err = run(tls.first_deploy_argv())

    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: service_connect_tls.private_ca_arn {arn}: "), err
    assert expected.format(arn=arn) in err, err
    assert writes(calls) == []


def test_deploy_refuses_a_ca_that_does_not_exist(project_factory, boto, run, calls):
    tls = project_factory("tls", TLS_TOPOLOGY.replace(
        "{ca}", "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/"
                "0f3c1d2e-1111-2222-3333-444455556666"), files={".keep": ""})

    code, _, err = run(tls.first_deploy_argv())

    assert code == 2 and err.count("\n") == 1, err
    assert "no such CA in us-east-1" in err and "check the ARN in topology.yaml" in err
    assert writes(calls) == []


def test_bootstrap_refuses_an_untagged_ca_before_any_write(project_factory, boto, run, calls):
    from tests.ops.test_ops_bootstrap import CONNECTION, bootstrap_argv

    tls = tls_project(project_factory, boto, tags={})

    code, _, err = run(bootstrap_argv(tls, "--yes", "--parameter",
                                      f"ConnectionArn={CONNECTION}"))

    assert code == 2 and err.count("\n") == 1, err
    assert "--tags Key=AmazonECSManaged,Value=true" in err
    assert writes(calls) == []
    assert boto("cloudformation").describe_stacks()["Stacks"] == []


def test_a_tls_deploy_calls_only_declared_operations(project_factory, boto, run):
    """The CA reads are declared (generator.awsfacts.operations), so the deploy step's
    role (pipeline.iam) is derived with them."""
    from generator.awsfacts import operations
    from iam.recording import BotoCallRecorder

    tls = tls_project(project_factory, boto)
    with BotoCallRecorder().recording() as recorder:
        assert run(tls.first_deploy_argv())[0] == 0

    assert {"acm-pca.DescribeCertificateAuthority", "acm-pca.ListTags"} <= recorder.operations
    declared = operations.DEPLOY_OPERATIONS | operations.DEPLOY_TLS_OPERATIONS
    assert recorder.operations <= declared, recorder.operations - declared


def test_a_redeploy_with_a_new_image_still_passes_the_preflight(project, run, boto):
    assert run(project.first_deploy_argv())[0] == 0

    code, out, err = run(project.deploy_argv("--image", NEW_IMAGE))

    assert (code, err) == (0, ""), out
    assert parameters(boto, "shop-store")["ImageUri"] == NEW_IMAGE


def test_a_stack_no_change_set_can_start_from_is_found_before_any_write(
        project, run, boto, calls, monkeypatch):
    """On main the cluster stack was updated first and the run then failed at that stack.
    UPDATE_ROLLBACK_FAILED is imitated on moto's answers (moto never reaches it)."""
    assert run(project.first_deploy_argv())[0] == 0
    real_client = aws_module.Aws.client

    def stuck(parsed, **_):
        for stack in parsed.get("Stacks", []):
            if stack["StackName"] == "shop-cache-network":
                stack["StackStatus"] = "UPDATE_ROLLBACK_FAILED"

    def client(self, service):
        made = real_client(self, service)
        made.meta.events.register("after-call.cloudformation.DescribeStacks", stuck)
        return made

    monkeypatch.setattr(aws_module.Aws, "client", client)
    calls.clear()

    code, _, err = run(project.deploy_argv("--image", NEW_IMAGE))

    assert code == 2 and err.count("\n") == 1, err
    assert ("stack shop-cache-network is UPDATE_ROLLBACK_FAILED: an update rollback failed: "
            "finish it with `aws cloudformation continue-update-rollback --stack-name "
            "shop-cache-network`") in err
    assert writes(calls) == []


def test_a_boundary_that_is_not_a_policy_arn_is_found_with_the_rest(project, run, boto, calls):
    """On main a wrong --permissions-boundary reached every service stack's roles."""
    argv = project.deploy_argv("--vpc-id", project.vpc_id, "--subnets", project.subnets)
    argv[argv.index("--permissions-boundary") + 1] = "shop-permissions-boundary"

    code, _, err = run(argv)

    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert ("error: permissions boundary 'shop-permissions-boundary' is not an IAM policy "
            "ARN") in lines[0]
    assert "ImageUri not given" in lines[1]
    assert writes(calls) == []
