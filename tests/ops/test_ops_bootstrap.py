"""`bootstrap` against moto, with a stand-in pipeline template taking a connection ARN
(moto has no CodePipeline/CodeStar Connections resources in CloudFormation)."""
from __future__ import annotations

import json

import pytest

CONNECTION = "arn:aws:codestar-connections:us-east-1:123456789012:connection/0a1b2c3d-4e5f"
PIPELINE = {
    "Parameters": {"ConnectionArn": {"Type": "String"},
                   "Branch": {"Type": "String", "Default": "main"}},
    "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
}


def create_bootstrap_stack(project, boto) -> dict:
    """The real bootstrap.yaml through CreateStack: moto reports outputs only for stacks
    made that way, not for executed change sets."""
    cfn = boto("cloudformation")
    cfn.create_stack(StackName="shop-bootstrap",
                     TemplateBody=(project.templates / "bootstrap.yaml").read_text(),
                     Capabilities=["CAPABILITY_NAMED_IAM"])
    return {o["OutputKey"]: o["OutputValue"]
            for o in cfn.describe_stacks(StackName="shop-bootstrap")["Stacks"][0]["Outputs"]}


def bootstrap_argv(project, *extra):
    (project.templates / "pipeline.yaml").write_text(json.dumps(PIPELINE), encoding="utf-8")
    return project.cli("bootstrap", "--templates", str(project.templates), *extra)


def test_bootstrap_creates_the_pipeline_stack_and_says_what_to_confirm(project, run, boto):
    outputs = create_bootstrap_stack(project, boto)
    code, out, err = run(bootstrap_argv(project, "--yes", "--parameter",
                                        f"ConnectionArn={CONNECTION}"))

    assert (code, err) == (0, "")
    # First the bootstrap stack (deploy role, boundary, bucket), with the caller's rights;
    # then the pipeline stack, which CloudFormation deploys as that deploy role.
    assert out.index("shop-bootstrap  ") < out.index("shop-pipeline   creating:")
    assert "shop-pipeline   creating: 1 resource change(s)" in out
    assert outputs["DeployRoleArn"].startswith("arn:aws:iam::")
    assert "Add    Placeholder (AWS::CloudFormation::WaitConditionHandle)" in out
    assert ("https://us-east-1.console.aws.amazon.com/codesuite/settings/123456789012/"
            "us-east-1/connections/0a1b2c3d-4e5f") in out
    stack = boto("cloudformation").describe_stacks(StackName="shop-pipeline")["Stacks"][0]
    assert {"ParameterKey": "ConnectionArn", "ParameterValue": CONNECTION} in stack["Parameters"]


def test_bootstrap_needs_the_connection_on_first_run(project, run, boto):
    code, _, err = run(bootstrap_argv(project, "--yes"))

    assert code == 2
    assert err.endswith("the pipeline stack does not exist yet; pass "
                        "--parameter ConnectionArn=...\n")
    # Found before the first write: on main the bootstrap stack was created first.
    assert boto("cloudformation").describe_stacks()["Stacks"] == []


def test_bootstrap_will_not_execute_unasked_without_a_terminal(project, run, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)

    code, _, err = run(bootstrap_argv(project, "--parameter", f"ConnectionArn={CONNECTION}"))

    assert code == 2
    assert err == ("error: stdin is not a terminal, so the change set cannot be confirmed; "
                   "pass --yes\n")


def test_bootstrap_sends_a_template_over_51200_bytes_by_s3_url(project, run, boto, monkeypatch,
                                                               moto):
    # moto's CloudFormation reads a TemplateURL from its own S3 only for a localhost URL.
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.replace("127.0.0.1", "localhost"))
    outputs = create_bootstrap_stack(project, boto)
    big = dict(PIPELINE, Description="x" * 1000, Metadata={"Padding": ["y" * 1000] * 60})
    argv = bootstrap_argv(project, "--yes", "--parameter", f"ConnectionArn={CONNECTION}")
    (project.templates / "pipeline.yaml").write_text(json.dumps(big), encoding="utf-8")
    assert len((project.templates / "pipeline.yaml").read_bytes()) > 51_200
    sent = []
    import botocore.client

    real = botocore.client.BaseClient._make_api_call

    def spy(self, operation, params):
        if operation == "CreateChangeSet":
            sent.append((params["StackName"], "TemplateURL" in params, "TemplateBody" in params))
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)

    code, out, err = run(argv)

    assert (code, err) == (0, ""), out
    assert ("shop-pipeline", True, False) in sent
    assert ("shop-bootstrap", False, True) in sent  # small: inline
    bucket = outputs["TemplateBucketName"]
    keys = [o["Key"] for o in boto("s3").list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("templates/")


# --- bootstrap --env NAME --trust ACCOUNT (issue 16, item 5) ---------------------------------

PIPELINE_ACCOUNT, PRODUCTION_ACCOUNT = "123456789012", "222222222222"
ENVIRONMENTS = f"""\
app: shop
namespace: shop.local
services:
  web:
    port: 8080
environments:
  staging:
    account: "{PIPELINE_ACCOUNT}"
    region: us-east-1
    network: {{vpc_id: vpc-0a1b2c3d, private_subnets: [subnet-0a0a0a0a]}}
  production:
    account: "{PRODUCTION_ACCOUNT}"
    region: us-east-1
    network: {{vpc_id: vpc-1a1b1c1d, private_subnets: [subnet-1a1a1a1a]}}
"""


def as_account(boto, monkeypatch, account: str) -> None:
    """Credentials of `account`: moto maps an assumed role's keys to the role's account."""
    credentials = boto("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/admin",
                                          RoleSessionName="bootstrap-test")["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])


def account_client(service: str, moto: str):
    """A client with the credentials in the environment (as_account's); a new session, as
    boto3's default one keeps the credentials it first read."""
    import boto3

    return boto3.Session().client(service, region_name="us-east-1", endpoint_url=moto)


def environments_project(project_factory, tmp_path):
    (tmp_path / "environments").mkdir()
    return project_factory("environments", ENVIRONMENTS)


def env_argv(project, *extra):
    return project.cli("bootstrap", "--templates", str(project.templates), *extra)


def test_bootstrap_env_creates_the_deployer_role_in_the_environments_account(
        tmp_path, project_factory, run, boto, moto, monkeypatch):
    project = environments_project(project_factory, tmp_path)
    as_account(boto, monkeypatch, PRODUCTION_ACCOUNT)

    code, out, err = run(env_argv(project, "--env", "production", "--trust", PIPELINE_ACCOUNT,
                                  "--yes"))

    assert (code, err) == (0, ""), out
    assert "Add    EnvironmentDeployerRole (AWS::IAM::Role)" in out
    assert (f"environment deployer arn:aws:iam::{PRODUCTION_ACCOUNT}:role/shop/"
            f"shop-environment-deployer: assumable by the deploy step of shop-pipeline in "
            f"account {PIPELINE_ACCOUNT}") in out
    stack = account_client("cloudformation", moto).describe_stacks(
        StackName="shop-bootstrap")["Stacks"][0]
    assert stack["StackId"].split(":")[4] == PRODUCTION_ACCOUNT
    assert {"ParameterKey": "TrustedAccount", "ParameterValue": PIPELINE_ACCOUNT} in \
        stack["Parameters"]
    role = account_client("iam", moto).get_role(RoleName="shop-environment-deployer")["Role"]
    assert role["Arn"] == f"arn:aws:iam::{PRODUCTION_ACCOUNT}:role/shop/shop-environment-deployer"
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{PIPELINE_ACCOUNT}:root"}
    assert statement["Condition"]["ArnLike"]["aws:PrincipalArn"] == (
        f"arn:aws:iam::{PIPELINE_ACCOUNT}:role/shop/shop-pipeline-DeployStepRole-*")
    # Nothing in the pipeline's account.
    assert boto("cloudformation").describe_stacks()["Stacks"] == []


def test_bootstrap_env_without_trust_keeps_the_trusted_account(
        tmp_path, project_factory, run, boto, moto, monkeypatch):
    project = environments_project(project_factory, tmp_path)
    as_account(boto, monkeypatch, PRODUCTION_ACCOUNT)
    assert run(env_argv(project, "--env", "production", "--trust", PIPELINE_ACCOUNT,
                        "--yes"))[0] == 0

    code, out, err = run(env_argv(project, "--env", "production", "--yes"))

    assert (code, err) == (0, ""), out
    stack = account_client("cloudformation", moto).describe_stacks(
        StackName="shop-bootstrap")["Stacks"][0]
    assert {"ParameterKey": "TrustedAccount", "ParameterValue": PIPELINE_ACCOUNT} in \
        stack["Parameters"]
    account_client("iam", moto).get_role(RoleName="shop-environment-deployer")


def test_bootstrap_env_refuses_credentials_of_another_account(tmp_path, project_factory,
                                                              run, boto):
    project = environments_project(project_factory, tmp_path)

    code, out, err = run(env_argv(project, "--env", "production", "--trust", PIPELINE_ACCOUNT,
                                  "--yes"))

    assert (code, out) == (2, "")
    assert err == (f"error: {project.topology_path}: environments.production.account is "
                   f"{PRODUCTION_ACCOUNT}, but the credentials are of account "
                   f"{PIPELINE_ACCOUNT}; use credentials of {PRODUCTION_ACCOUNT} (--profile)\n")
    assert boto("cloudformation").describe_stacks()["Stacks"] == []


@pytest.mark.parametrize("argv, message", [
    (["--env", "production", "--trust", "12345"],
     "error: --trust '12345': not a 12-digit AWS account ID\n"),
    (["--env", "production", "--trust", "arn:aws:iam::123456789012:root"],
     "error: --trust 'arn:aws:iam::123456789012:root': not a 12-digit AWS account ID\n"),
    (["--trust", PIPELINE_ACCOUNT],
     "error: --trust needs --env NAME (the environment whose account trusts the pipeline's)\n"),
    (["--env", "production", "--parameter", "ConnectionArn=x"],
     "error: --parameter and --stack-name are the pipeline stack's; bootstrap --env creates "
     "only the bootstrap stack\n"),
], ids=["short-account", "an-arn", "trust-without-env", "pipeline-parameter"])
def test_bootstrap_env_refuses_bad_flags_in_one_line(tmp_path, project_factory, run, boto,
                                                     monkeypatch, argv, message):
    project = environments_project(project_factory, tmp_path)
    as_account(boto, monkeypatch, PRODUCTION_ACCOUNT)

    code, out, err = run(env_argv(project, *argv, "--yes"))

    assert (code, out, err) == (2, "", message)


def test_bootstrap_env_names_the_environments_it_knows(tmp_path, project_factory, run, boto,
                                                       moto, monkeypatch):
    project = environments_project(project_factory, tmp_path)
    as_account(boto, monkeypatch, PRODUCTION_ACCOUNT)

    code, out, err = run(env_argv(project, "--env", "prod", "--trust", PIPELINE_ACCOUNT,
                                  "--yes"))

    assert (code, out) == (2, "")
    assert err == (f"error: {project.topology_path}: --env prod: no such environment "
                   "(environments: staging, production)\n")
    assert account_client("cloudformation", moto).describe_stacks()["Stacks"] == []


def test_bootstrap_env_needs_a_topology_with_environments(project, run):
    code, out, err = run(env_argv(project, "--env", "production", "--yes"))

    assert (code, out) == (2, "")
    assert err == (f"error: {project.topology_path}: --env production: the topology has no "
                   "environments\n")


def test_bootstrap_env_refuses_a_template_without_the_parameter(
        tmp_path, project_factory, project, run, boto, monkeypatch):
    """templates/ rendered from a topology without environments: no TrustedAccount."""
    with_environments = environments_project(project_factory, tmp_path)
    as_account(boto, monkeypatch, PRODUCTION_ACCOUNT)

    code, out, err = run(with_environments.cli(
        "bootstrap", "--templates", str(project.templates), "--env", "production", "--trust",
        PIPELINE_ACCOUNT, "--yes"))

    assert (code, out) == (2, "")
    assert err == (f"error: {project.templates / 'bootstrap.yaml'}: no TrustedAccount "
                   "parameter (rendered from a topology without environments?); run "
                   "`python -m generator generate`\n")


def test_a_plain_bootstrap_keeps_the_trusted_account_of_an_existing_stack(tmp_path):
    """"If you don't specify a key and value for a particular parameter, CloudFormation uses
    the default value" (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html),
    here "", which would delete the deployer role; UsePreviousValue keeps the stack's."""
    from generator.ops import bootstrap, files
    from generator.ops.stackflow import PREVIOUS

    with_parameter = files.Template(tmp_path / "bootstrap.yaml", "",
                                    {"TrustedAccount": {"Type": "String", "Default": ""}})
    without = files.Template(tmp_path / "bootstrap.yaml", "", {})
    stack = {"StackStatus": "UPDATE_COMPLETE", "StackName": "shop-bootstrap",
             "Parameters": [{"ParameterKey": "TrustedAccount",
                             "ParameterValue": PIPELINE_ACCOUNT}]}
    assert bootstrap.bootstrap_parameters(with_parameter, stack, None) == {
        "TrustedAccount": PREVIOUS}
    assert bootstrap.bootstrap_parameters(with_parameter, None, None) == {}
    assert bootstrap.bootstrap_parameters(with_parameter, stack, PRODUCTION_ACCOUNT) == {
        "TrustedAccount": PRODUCTION_ACCOUNT}
    assert bootstrap.bootstrap_parameters(without, stack, None) == {}
