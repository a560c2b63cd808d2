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


def bootstrap_argv(project, *extra):
    (project.templates / "pipeline.yaml").write_text(json.dumps(PIPELINE), encoding="utf-8")
    return project.cli("bootstrap", "--templates", str(project.templates), *extra)


def test_bootstrap_creates_the_pipeline_stack_and_says_what_to_confirm(project, run, boto):
    code, out, err = run(bootstrap_argv(project, "--yes", "--parameter",
                                        f"ConnectionArn={CONNECTION}"))

    assert (code, err) == (0, "")
    assert "shop-pipeline  creating: 1 resource change(s)" in out
    assert "Add    Placeholder (AWS::CloudFormation::WaitConditionHandle)" in out
    assert ("https://us-east-1.console.aws.amazon.com/codesuite/settings/123456789012/"
            "us-east-1/connections/0a1b2c3d-4e5f") in out
    stack = boto("cloudformation").describe_stacks(StackName="shop-pipeline")["Stacks"][0]
    assert {"ParameterKey": "ConnectionArn", "ParameterValue": CONNECTION} in stack["Parameters"]


def test_bootstrap_needs_the_connection_on_first_run(project, run):
    code, _, err = run(bootstrap_argv(project, "--yes"))

    assert code == 2
    assert err.endswith("the pipeline stack does not exist yet; pass "
                        "--parameter ConnectionArn=...\n")


def test_bootstrap_will_not_execute_unasked_without_a_terminal(project, run, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)

    code, _, err = run(bootstrap_argv(project, "--parameter", f"ConnectionArn={CONNECTION}"))

    assert code == 2
    assert err == ("error: stdin is not a terminal, so the change set cannot be confirmed; "
                   "pass --yes\n")
