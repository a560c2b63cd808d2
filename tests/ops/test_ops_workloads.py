"""A mixed topology (issue 10) deployed to moto: each service gets its own image (the
build's images.json, the topology's image, --image), the Service Connect TLS role from
the cluster stack, its certificate and secret ARNs; `verify` passes."""
from __future__ import annotations

import json

import pytest

from test_ops_verify import register_endpoints
from tests.ops.conftest import private_ca

ACCOUNT = "123456789012"
REPOSITORY = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/shop/service"
NGINX = "public.ecr.aws/nginx/nginx:1.27"
CERT = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/0f3c1d2e-aaaa-bbbb-cccc-444455556666"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:shop/web-db-AbCdEf"

MIXED = f"""\
app: shop
namespace: shop.local
service_connect_tls:
  private_ca_arn: {{ca}}
services:
  orders:
    port: 8080
    build: apps/orders
  search:
    port: 80
    image: {NGINX}
    health_check_command: [CMD-SHELL, "curl -fs http://localhost/ || exit 1"]
  web:
    port: 8080
    public: true
    calls: [orders, search]
    certificate_arn: {CERT}
    secrets: {{DB_PASSWORD: {SECRET}}}
"""
DOCKERFILE = "FROM public.ecr.aws/docker/library/python:3.12-slim\nUSER 65534\n"


def images_for(commit: str) -> dict[str, str]:
    """What pipeline/build_images.py writes for MIXED, `commit` standing for the content
    digest of each image's build context (a different one, a different content)."""
    return {"web": f"{REPOSITORY}:app-{commit}", "orders": f"{REPOSITORY}:apps-orders-{commit}"}


@pytest.fixture
def mixed(project_factory, boto):
    # The preflight reads the CA: an ACTIVE one tagged AmazonECSManaged=true.
    return project_factory("mixed", MIXED.replace("{ca}", private_ca(boto)),
                           files={"apps/orders/Dockerfile": DOCKERFILE})


def parameters(boto, stack: str) -> dict[str, str]:
    described = boto("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in described["Parameters"]}


def write_images(project, commit: str) -> str:
    path = project.root / "images.json"
    path.write_text(json.dumps(images_for(commit)), encoding="utf-8")
    return str(path)


def first_deploy(project, images_file: str, *extra: str) -> list[str]:
    return project.deploy_argv("--vpc-id", project.vpc_id, "--subnets", project.subnets,
                               "--images", images_file, *extra)


def test_each_service_runs_its_own_image_and_verify_passes(mixed, run, boto):
    code, out, err = run(first_deploy(mixed, write_images(mixed, "c1")))
    assert code == 0, out + err

    assert parameters(boto, "shop-web")["ImageUri"] == f"{REPOSITORY}:app-c1"
    assert parameters(boto, "shop-orders")["ImageUri"] == f"{REPOSITORY}:apps-orders-c1"
    assert parameters(boto, "shop-search")["ImageUri"] == NGINX
    web = parameters(boto, "shop-web")
    # moto keeps no outputs of a stack made by a change set, so the role the deployer
    # reads from the cluster stack's outputs is empty here (see the next test).
    assert web["ServiceConnectTlsRoleArn"] == ""
    assert web["ServiceConnectTlsCaArn"] == mixed.topology.service_connect_tls.private_ca_arn
    assert web["CertificateArn"] == CERT and web["SecretDbPassword"] == SECRET
    assert parameters(boto, "shop-search")["HealthCheckCommand"] == (
        "CMD-SHELL,curl -fs http://localhost/ || exit 1")
    assert parameters(boto, "shop-orders")["HealthCheckCommand"] == ""  # no check

    register_endpoints(boto, "shop.local", ["orders", "search", "web"])
    code, out, err = run(mixed.cli("verify"))
    assert (code, err) == (0, ""), out
    assert out.startswith("verify: OK: 3 service(s) in shop")


def test_the_tls_role_comes_from_the_cluster_stacks_outputs(mixed, tls_role_arn):
    from generator import names
    from generator.ops.deploy import Deployment, DeployOptions

    from generator.ops.scheduler import Scheduler

    # The cluster stack as DescribeStacks answers it once deployed: what the run saw when
    # the stack settled (no call is made here: the client is None).
    cluster = {"StackName": "shop-cluster", "StackStatus": "UPDATE_COMPLETE",
               "Parameters": [{"ParameterKey": "PrivateSubnetIds",
                               "ParameterValue": "subnet-0a,subnet-0b"}],
               "Outputs": [{"OutputKey": names.TLS_ROLE_OUTPUT, "OutputValue": tls_role_arn}]}

    deployment = Deployment.__new__(Deployment)
    deployment.cfn, deployment.topology = None, mixed.topology
    deployment.before, deployment.app_stacks = {}, {}
    deployment.scheduler = Scheduler(None, None, None, settled={"shop-cluster": cluster})
    deployment.options = DeployOptions(templates_dir=mixed.templates,
                                       permissions_boundary="arn:aws:iam::1:policy/b")
    deployment.bootstrap = {}
    deployment.boundary = "arn:aws:iam::1:policy/b"
    values = deployment._deploy_values()
    assert values[names.TLS_ROLE_PARAMETER] == tls_role_arn
    assert values[names.SUBNETS_PARAMETER] == "subnet-0a,subnet-0b"


def test_a_new_build_changes_the_built_images_only(mixed, run, boto):
    assert run(first_deploy(mixed, write_images(mixed, "c1")))[0] == 0

    code, out, _ = run(mixed.deploy_argv("--images", write_images(mixed, "c2")))

    assert code == 0, out
    assert parameters(boto, "shop-web")["ImageUri"] == f"{REPOSITORY}:app-c2"
    assert parameters(boto, "shop-orders")["ImageUri"] == f"{REPOSITORY}:apps-orders-c2"
    assert parameters(boto, "shop-search")["ImageUri"] == NGINX


def test_image_falls_back_to_the_single_image_flag(mixed, run, boto):
    images = mixed.root / "only-web.json"
    images.write_text(json.dumps({"web": f"{REPOSITORY}:w1"}))
    code, out, err = run(first_deploy(mixed, str(images), "--image", f"{REPOSITORY}:any"))
    assert code == 0, out + err
    assert parameters(boto, "shop-web")["ImageUri"] == f"{REPOSITORY}:w1"
    assert parameters(boto, "shop-orders")["ImageUri"] == f"{REPOSITORY}:any"
    assert parameters(boto, "shop-search")["ImageUri"] == NGINX  # the topology's wins


def test_a_new_stack_without_any_image_is_one_line(mixed, run):
    images = mixed.root / "only-web.json"
    images.write_text(json.dumps({"web": f"{REPOSITORY}:w1"}))
    code, out, err = run(first_deploy(mixed, str(images)))
    assert code == 2
    assert err.splitlines() == ["error: shop-orders: ImageUri not given: the stack does not "
                                "exist yet, so pass --images FILE (the build's service -> "
                                "image map) or --image URI"]


@pytest.mark.parametrize("document,message", [
    ({"nope": f"{REPOSITORY}:1"}, "--images names nope, not in"),
    ({"web": "Not A Reference"}, "web: 'Not A Reference' is not an image reference"),
    (["web"], 'expected {"<service>": "<image>", ...}'),
])
def test_a_bad_images_file_is_one_line_exit_2(mixed, run, document, message):
    path = mixed.root / "bad.json"
    path.write_text(json.dumps(document))
    code, out, err = run(first_deploy(mixed, str(path)))
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err, err
