"""`bootstrap` against moto, with a stand-in pipeline template taking a connection ARN
(moto has no CodePipeline/CodeStar Connections resources in CloudFormation)."""
from __future__ import annotations

import json

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
