"""Two environments against moto: staging in the pipeline's own account, production in
another, reached through the environment deployer role (issue 16's acceptance: a deploy
of both environments, with the role assumption recorded).

moto's STS answers AssumeRole with credentials of the role's account, and its other
services then act in that account, as AWS does; it does not evaluate the trust policy
(tests/iam does that with the IAM evaluator).
"""
from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from tests.ops.conftest import BOUNDARY, IMAGE, REGION, make_project

PIPELINE_ACCOUNT = "123456789012"  # moto's default account: the test credentials'
PRODUCTION_ACCOUNT = "222222222222"
ROLE = f"arn:aws:iam::{PRODUCTION_ACCOUNT}:role/shop/shop-environment-deployer"


def topology_text(staging_network: tuple[str, list[str]],
                  production_network: tuple[str, list[str]]) -> str:
    def network(vpc: str, subnets: list[str]) -> str:
        return f"{{vpc_id: {vpc}, private_subnets: [{', '.join(subnets)}]}}"

    return f"""\
app: shop
namespace: shop.internal
services:
  api:
    port: 8080
    calls: [stock]
  stock:
    port: 7070
environments:
  staging:
    account: "{PIPELINE_ACCOUNT}"
    region: {REGION}
    network: {network(*staging_network)}
  production:
    account: "{PRODUCTION_ACCOUNT}"
    region: {REGION}
    approval: true
    network: {network(*production_network)}
    services:
      api: {{desired_count: 2, scaling: {{max: 4}}}}
"""


def production_clients(moto: str):
    """boto3 clients acting in the production account (as its deployer role)."""
    sts = boto3.client("sts", region_name=REGION, endpoint_url=moto)
    credentials = sts.assume_role(RoleArn=ROLE, RoleSessionName="test")["Credentials"]
    session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                            aws_secret_access_key=credentials["SecretAccessKey"],
                            aws_session_token=credentials["SessionToken"], region_name=REGION)
    return lambda service: session.client(service, endpoint_url=moto,
                                          config=Config(inject_host_prefix=False))


def default_network(client) -> tuple[str, list[str]]:
    ec2 = client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]][:2]
    return vpc, subnets


@pytest.fixture
def two_accounts(tmp_path, boto, moto):
    production = production_clients(moto)
    text = topology_text(default_network(boto), default_network(production))
    project = make_project(tmp_path, boto, text)
    return project, production


def stacks(client) -> set[str]:
    return {s["StackName"] for s in client("cloudformation").describe_stacks()["Stacks"]}


def env_deploy(project, env: str) -> list[str]:
    return project.cli("deploy", "--env", env, "--templates", str(project.templates),
                       "--permissions-boundary", BOUNDARY, "--calls-per-second", "0",
                       "--image", IMAGE)


def test_each_environment_lands_in_its_own_account(two_accounts, run, boto):
    project, production = two_accounts
    code, out, err = run(env_deploy(project, "staging"))
    assert (code, err) == (0, ""), out
    assert "assumed" not in out  # staging is the credentials' own account
    staging_stacks = {"shop-staging-cluster", "shop-staging-api", "shop-staging-stock",
                      "shop-staging-api-network", "shop-staging-stock-network",
                      "shop-staging-api-ingress", "shop-staging-stock-ingress"}
    assert stacks(boto) == staging_stacks

    code, out, err = run(env_deploy(project, "production"))
    assert (code, err) == (0, ""), out
    # The role assumption, recorded in the run's output.
    assert (f"environment production: account {PRODUCTION_ACCOUNT} as {ROLE} (assumed from "
            f"account {PIPELINE_ACCOUNT})") in out
    assert stacks(production) == {name.replace("staging", "production")
                                  for name in staging_stacks}
    assert stacks(boto) == staging_stacks  # nothing of production in the pipeline account


def test_production_runs_its_own_values_and_pulls_from_the_pipeline_account(two_accounts,
                                                                            run, boto):
    project, production = two_accounts
    assert run(env_deploy(project, "staging"))[0] == 0
    assert run(env_deploy(project, "production"))[0] == 0

    def parameters(client, stack):
        described = client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
        return {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}

    staging_api = parameters(boto, "shop-staging-api")
    production_api = parameters(production, "shop-production-api")
    assert (staging_api["MaxCapacity"], production_api["MaxCapacity"]) == ("1", "4")
    assert production_api["DesiredCount"] == "2"
    assert production_api["PeerUrls"] == "http://stock.production.shop.internal:7070"
    assert staging_api["PeerUrls"] == "http://stock.staging.shop.internal:7070"
    # The same image; production's execution role may pull it from the pipeline account.
    assert staging_api["ImageUri"] == production_api["ImageUri"] == IMAGE
    assert staging_api["PullRepositoryArn"] == ""
    assert production_api["PullRepositoryArn"] == \
        f"arn:aws:ecr:{REGION}:{PIPELINE_ACCOUNT}:repository/demo"
    cluster = parameters(production, "shop-production-cluster")
    assert cluster["AppName"] == "shop-production"
    assert cluster["NamespaceDnsName"] == "production.shop.internal"
    assert cluster["VpcId"] == default_network(production)[0]


def test_status_reads_the_environments_account(two_accounts, run):
    project, _ = two_accounts
    assert run(env_deploy(project, "production"))[0] == 0
    code, out, err = run(project.cli("status", "--env", "production"))
    assert code == 0, err
    assert "shop-production in us-east-1: cluster stack shop-production-cluster" in out


def test_a_region_flag_that_contradicts_the_environment_is_one_line(two_accounts, run):
    project, _ = two_accounts
    code, _, err = run(project.cli("status", "--env", "production", "--region", "eu-west-1"))
    assert code == 2
    assert err.strip() == ("error: --region eu-west-1: environment production is in "
                           f"{REGION} ({project.topology_path}); drop --region")
