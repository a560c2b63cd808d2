"""Helpers for the multi-environment pipeline tests: the two-environment topology of
tests/environments, its rendered pipeline, and the template resolved as CloudFormation
would resolve it in a given account (conditions evaluated, Fn::If branches taken,
AWS::NoValue dropped, Refs and GetAtts replaced by the values below)."""
from __future__ import annotations

import re

import yaml

from generator import topology as topology_module
from pipeline import stack as pipeline_stack
from tests.environments.conftest import PIPELINE_ACCOUNT, PRODUCTION_ACCOUNT, TWO_ENVIRONMENTS

__all__ = ["PIPELINE_ACCOUNT", "PRODUCTION_ACCOUNT", "TOOLING_ACCOUNT", "TWO_ENVIRONMENTS"]

# A third account holding only the pipeline (Copilot's and CDK's "tools" account).
TOOLING_ACCOUNT = "333333333333"
REGION = "eu-west-1"
APP = "shop"
STACK = f"{APP}-pipeline"
ARTIFACT_BUCKET = f"{STACK}-artifactbucket-1a2b3c4d"
TEMPLATE_BUCKET = f"{APP}-bootstrap-templatebucket-1a2b3c4d"
KEY_ID = "0f3c1d2e-1111-2222-3333-444455556666"
_DROP = object()


def two_environments() -> topology_module.Topology:
    return topology_module.parse(TWO_ENVIRONMENTS, "topology.yaml")


def topology_with(edit) -> topology_module.Topology:
    """TWO_ENVIRONMENTS after `edit(document)` changes the parsed YAML in place."""
    document = yaml.safe_load(TWO_ENVIRONMENTS)
    edit(document)
    return topology_module.parse(yaml.safe_dump(document, sort_keys=False), "topology.yaml")


def rendered(topology) -> dict:
    return pipeline_stack.build(topology).to_dict()


def values(account: str) -> dict:
    """What the template's references stand for, with the stack in `account`."""
    p = f"{REGION}:{account}"
    roles = {name: f"arn:aws:iam::{account}:role/{APP}/{STACK}-{name}-0A1B2C3D"
             for name in ("PipelineRole", "BuildRole", "DeployStepRole", "VerifyRole")}
    return {
        "AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": account,
        "AWS::StackName": STACK, "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackId": f"arn:aws:cloudformation:{p}:stack/{STACK}/0a1b2c3d-1111-2222-3333",
        "ArtifactBucket": ARTIFACT_BUCKET, "ArtifactBucket.Arn": f"arn:aws:s3:::{ARTIFACT_BUCKET}",
        "ArtifactKey": KEY_ID, "ArtifactKey.Arn": f"arn:aws:kms:{p}:key/{KEY_ID}",
        "ImageRepository.Arn": f"arn:aws:ecr:{p}:repository/{APP}/service-0a1b2c3d",
        "ImageRepository.RepositoryUri":
            f"{account}.dkr.ecr.{REGION}.amazonaws.com/{APP}/service-0a1b2c3d",
        "BuildProject": f"{STACK}-build", "DeployProject": f"{STACK}-deploy",
        "VerifyProject": f"{STACK}-verify",
        **{f"{name}.Arn": f"arn:aws:codebuild:{p}:project/{STACK}-{suffix}"
           for name, suffix in (("BuildProject", "build"), ("DeployProject", "deploy"),
                                ("VerifyProject", "verify"))},
        **{f"{name}.Arn": f"arn:aws:logs:{p}:log-group:/aws/codebuild/{STACK}-{suffix}:*"
           for name, suffix in (("BuildLogGroup", "build"), ("DeployLogGroup", "deploy"),
                                ("VerifyLogGroup", "verify"))},
        "BuildLogGroup": f"/aws/codebuild/{STACK}-build",
        "DeployLogGroup": f"/aws/codebuild/{STACK}-deploy",
        "VerifyLogGroup": f"/aws/codebuild/{STACK}-verify",
        **{f"{name}.Arn": f"arn:aws:codebuild:{p}:report-group/{STACK}-build-{report}"
           for name, report in pipeline_stack.REPORTS.items()},
        **{f"{name}.Arn": arn for name, arn in roles.items()},
        "ConnectionArn": f"arn:aws:codeconnections:{p}:connection/0a1b2c3d",
        "FullRepositoryId": "my-org/shop", "BranchName": "main", "ImagesToKeep": "30",
        "ArtifactRetentionDays": "30",
        f"{APP}-bootstrap-DeployRoleArn":
            f"arn:aws:iam::{account}:role/{APP}-bootstrap-CloudFormationDeployRole-1A2B",
        f"{APP}-bootstrap-PermissionsBoundaryArn":
            f"arn:aws:iam::{account}:policy/{APP}-permissions-boundary-0a1b2c3d",
        f"{APP}-bootstrap-TemplateBucketName": TEMPLATE_BUCKET,
    }


def _condition(node, conditions: dict, known: dict) -> bool:
    if "Condition" in node:
        return _condition(conditions[node["Condition"]], conditions, known)
    (function, argument), = node.items()
    if function == "Fn::Not":
        return not _condition(argument[0], conditions, known)
    if function == "Fn::Or":
        return any(_condition(a, conditions, known) for a in argument)
    if function == "Fn::And":
        return all(_condition(a, conditions, known) for a in argument)
    if function == "Fn::Equals":
        left, right = (resolve(a, conditions, known) for a in argument)
        return left == right
    raise AssertionError(f"condition {node} not modelled")


def holds(template: dict, name: str, account: str) -> bool:
    return _condition({"Condition": name}, template.get("Conditions", {}), values(account))


def resolve(node, conditions: dict, known: dict):
    if isinstance(node, list):
        return [r for r in (resolve(n, conditions, known) for n in node) if r is not _DROP]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (function, argument), = node.items()
        if function == "Ref":
            return _DROP if argument == "AWS::NoValue" else known[argument]
        if function == "Fn::If":
            name, yes, no = argument
            return resolve(yes if _condition({"Condition": name}, conditions, known) else no,
                           conditions, known)
        if function == "Fn::Sub":
            text, extra = (argument, {}) if isinstance(argument, str) else argument
            local = {**known, **{k: resolve(v, conditions, known) for k, v in extra.items()}}
            return re.sub(r"\$\{([^}!]+)\}", lambda m: str(local[m.group(1)]), text)
        if function == "Fn::GetAtt":
            return known[".".join(argument) if isinstance(argument, list) else argument]
        if function == "Fn::ImportValue":
            return known[resolve(argument, conditions, known)]
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(p) for p in resolve(parts, conditions, known))
        if function in ("Fn::Select", "Fn::Split"):
            if function == "Fn::Split":
                separator, text = argument
                return resolve(text, conditions, known).split(separator)
            index, items = argument
            return resolve(items, conditions, known)[int(index)]
    result = {}
    for key, value in node.items():
        resolved = resolve(value, conditions, known)
        if resolved is not _DROP:
            result[key] = resolved
    return result


def deployed(template: dict, account: str) -> dict:
    """The template as it stands in `account`: resources whose condition fails removed,
    everything else resolved."""
    conditions = template.get("Conditions", {})
    known = values(account)
    resources = {}
    for name, resource in template["Resources"].items():
        condition = resource.get("Condition")
        if condition and not _condition({"Condition": condition}, conditions, known):
            continue
        resources[name] = resolve(resource, conditions, known)
    return {"Resources": resources}


def statements(document: dict) -> list[dict]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def listed(value) -> list:
    return value if isinstance(value, list) else [value]


def principals(statement: dict) -> list[str]:
    return sorted(listed(statement["Principal"]["AWS"]))


def root(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


def matches(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    """IAM's wildcards: * any run of characters, ? one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None
