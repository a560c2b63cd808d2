"""Conformance checks of the delivery stacks (bootstrap.yaml and pipeline.yaml): CodePipeline
V2, connections, CodeBuild, S3, ECR and the permissions boundary. A module of their own,
beside test_conformance.py's service and cluster checks, so neither passes ~400 lines; the
records in requirements.py name these functions like the others, and test_conformance.py
runs them."""
from __future__ import annotations

import json
import re

import yaml

from pipeline import build_images
from tests.conformance.kit import (REPO, all_resources, allows, boundary_statements, branches,
                                   documents, listed, parsed, ref_target, resources,
                                   role_statements, statements, trusted_services)

def _pipeline(which: str) -> tuple[dict, dict]:
    document = documents(which)["pipeline.yaml"]
    return document, dict(resources(document, "AWS::CodePipeline::Pipeline"))["Pipeline"]


def _actions(pipeline: dict):
    for stage in pipeline["Properties"]["Stages"]:
        for branch in branches(stage):
            if isinstance(branch, dict) and "Actions" in branch:  # not AWS::NoValue
                yield from branch["Actions"]


# --- CodePipeline V2 --------------------------------------------------------------------

def queued_execution_needs_a_v2_pipeline(which: str) -> None:
    _, pipeline = _pipeline(which)
    properties = pipeline["Properties"]
    # Runs one at a time, so no Deploy overlaps a newer run's checks (issue 14, finding 10).
    assert properties["ExecutionMode"] == "QUEUED"
    assert properties["PipelineType"] == "V2"


def triggers_name_a_connection_source_action(which: str) -> None:
    _, pipeline = _pipeline(which)
    sources = {a["Name"] for a in _actions(pipeline)
               if a["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"}
    triggers = pipeline["Properties"].get("Triggers", [])
    assert triggers and sources
    for trigger in triggers:
        assert trigger["ProviderType"] == "CodeStarSourceConnection"
        assert trigger["GitConfiguration"]["SourceActionName"] in sources


def the_trigger_covers_the_source_branch(which: str) -> None:
    _, pipeline = _pipeline(which)
    source = next(a for a in _actions(pipeline)
                  if a["ActionTypeId"]["Provider"] == "CodeStarSourceConnection")
    branch = source["Configuration"]["BranchName"]
    pushes = [push for trigger in pipeline["Properties"]["Triggers"]
              for push in trigger["GitConfiguration"].get("Push", [])]
    assert any(branch in push.get("Branches", {}).get("Includes", []) for push in pushes)


def the_pipeline_role_trusts_codepipeline(which: str) -> None:
    document, pipeline = _pipeline(which)
    role = dict(resources(document, "AWS::IAM::Role"))[ref_target(pipeline["Properties"]["RoleArn"])]
    assert trusted_services(role) == {"codepipeline.amazonaws.com"}


# --- Connections --------------------------------------------------------------------------

_PREFIXES = ("codestar-connections", "codeconnections")


def connection_grants_match_the_resource_prefix(which: str) -> None:
    granted: dict[str, set[str]] = {}
    for _, _, resource in [*all_resources(which, "AWS::IAM::ManagedPolicy"),
                           *all_resources(which, "AWS::IAM::Role")]:
        properties = resource["Properties"]
        found = (statements(properties["PolicyDocument"]) if "PolicyDocument" in properties
                 else role_statements(resource))
        for statement in found:
            prefixes = {a.split(":")[0] for a in listed(statement["Action"])} & set(_PREFIXES)
            for action in listed(statement["Action"]):
                prefix, _, verb = action.partition(":")
                if prefix in _PREFIXES:
                    granted.setdefault(verb, set()).add(prefix)
            arns = json.dumps(statement.get("Resource", []))
            for prefix in _PREFIXES:
                if f":{prefix}:" in arns:
                    assert prefix in prefixes, (prefix, statement)
    assert granted
    for verb, prefixes in granted.items():
        assert prefixes == set(_PREFIXES), (verb, prefixes)


def connection_arn_accepts_both_prefixes(which: str) -> None:
    document, _ = _pipeline(which)
    pattern = re.compile(document["Parameters"]["ConnectionArn"]["AllowedPattern"])
    tail = ":eu-west-1:123456789012:connection/0f3c1d2e-1111-2222-3333-444455556666"
    for prefix in _PREFIXES:
        assert pattern.match(f"arn:aws:{prefix}{tail}"), prefix
    assert not pattern.match(f"arn:aws:codecommit{tail}")


# --- CodeBuild ------------------------------------------------------------------------------

def _projects(which: str):
    document = documents(which)["pipeline.yaml"]
    projects = dict(resources(document, "AWS::CodeBuild::Project"))
    assert projects
    return document, projects


def codebuild_projects_have_a_codebuild_service_role(which: str) -> None:
    document, projects = _projects(which)
    roles = dict(resources(document, "AWS::IAM::Role"))
    for logical_id, project in projects.items():
        role = roles[ref_target(project["Properties"]["ServiceRole"])]
        assert trusted_services(role) == {"codebuild.amazonaws.com"}, logical_id


def codebuild_roles_grant_no_wildcard_action(which: str) -> None:
    document, projects = _projects(which)
    roles = dict(resources(document, "AWS::IAM::Role"))
    for project in projects.values():
        role = roles[ref_target(project["Properties"]["ServiceRole"])]
        assert role["Properties"].get("PermissionsBoundary")
        for statement in role_statements(role):
            if statement["Effect"] == "Allow":
                for action in listed(statement["Action"]):
                    assert "*" not in action, action


def pipeline_projects_use_codepipeline_artifacts(which: str) -> None:
    document, projects = _projects(which)
    _, pipeline = _pipeline(which)
    used = {ref_target(a["Configuration"]["ProjectName"]) for a in _actions(pipeline)
            if a["ActionTypeId"]["Provider"] == "CodeBuild"}
    assert used and used <= set(projects)
    for logical_id in used:
        properties = projects[logical_id]["Properties"]
        assert properties["Source"]["Type"] == "CODEPIPELINE", logical_id
        assert properties["Artifacts"]["Type"] == "CODEPIPELINE", logical_id


def only_the_image_build_runs_privileged(which: str) -> None:
    _, projects = _projects(which)
    builders = 0
    for logical_id, project in projects.items():
        spec = (REPO / project["Properties"]["Source"]["BuildSpec"]).read_text()
        # `pipeline.build_images build` runs `docker build` and `docker push`.
        builds_images = "pipeline.build_images build" in spec
        builders += builds_images
        privileged = project["Properties"]["Environment"].get("PrivilegedMode") is True
        assert privileged == builds_images, logical_id
    assert builders == 1


def buildspec_reports_land_in_the_stacks_report_groups(which: str) -> None:
    document, projects = _projects(which)
    groups = {group["Properties"]["Name"]["Fn::Sub"]: logical_id for logical_id, group
              in resources(document, "AWS::CodeBuild::ReportGroup")}
    roles = dict(resources(document, "AWS::IAM::Role"))
    reported = 0
    for logical_id, project in projects.items():
        spec = yaml.safe_load((REPO / project["Properties"]["Source"]["BuildSpec"]).read_text())
        name = project["Properties"]["Name"]["Fn::Sub"]
        role = roles[ref_target(project["Properties"]["ServiceRole"])]
        for report in (spec.get("reports") or {}):
            reported += 1
            # A report name, not an ARN: CodeBuild uses <project-name>-<report-group-name>.
            group = groups.get(f"{name}-{report}")
            assert group, (logical_id, report)
            writes = [s for s in role_statements(role)
                      if "codebuild:BatchPutTestCases" in listed(s["Action"])]
            assert any({"Fn::GetAtt": [group, "Arn"]} in listed(s["Resource"])
                       for s in writes), (logical_id, report)
    assert reported


# --- S3 ---------------------------------------------------------------------------------------

def _buckets(which: str):
    found = list(all_resources(which, "AWS::S3::Bucket"))
    assert found
    return found


def _bucket_policies(which: str) -> dict:
    return {(name, ref_target(p["Properties"]["Bucket"])): p
            for name, _, p in all_resources(which, "AWS::S3::BucketPolicy")}


def the_deployed_baseline_never_expires(which: str) -> None:
    bucket = dict(resources(documents(which)["bootstrap.yaml"], "AWS::S3::Bucket"))
    rules = bucket["TemplateBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    for rule in rules:
        if "ExpirationInDays" in rule or "ExpirationDate" in rule:
            prefix = rule.get("Prefix", rule.get("Filter", {}).get("Prefix"))
            # No prefix (or an empty filter) is every object: deployed/ too.
            assert prefix and not "deployed/".startswith(prefix), rule["Id"]


def buckets_block_public_access(which: str) -> None:
    policies = _bucket_policies(which)
    for name, logical_id, bucket in _buckets(which):
        block = bucket["Properties"]["PublicAccessBlockConfiguration"]
        assert all(block.get(key) is True for key in (
            "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls",
            "RestrictPublicBuckets")), logical_id
        policy = policies.get((name, logical_id))
        for statement in statements(policy["Properties"]["PolicyDocument"]) if policy else []:
            if statement.get("Principal") == "*" or statement.get("Principal") == {"AWS": "*"}:
                assert statement["Effect"] == "Deny", statement


def buckets_refuse_plain_http(which: str) -> None:
    policies = _bucket_policies(which)
    for name, logical_id, _ in _buckets(which):
        policy = policies[(name, logical_id)]
        denies = [s for s in statements(policy["Properties"]["PolicyDocument"])
                  if s["Effect"] == "Deny" and s.get("Principal") == "*"
                  and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
                  and "s3:*" in listed(s["Action"])]
        assert denies, logical_id
        covered = json.dumps(denies[0]["Resource"])
        assert f"{logical_id}.Arn" in covered and f"${{{logical_id}.Arn}}/*" in covered


# --- ECR --------------------------------------------------------------------------------------

def _repository(which: str) -> dict:
    return dict(resources(documents(which)["pipeline.yaml"],
                          "AWS::ECR::Repository"))["ImageRepository"]["Properties"]


def immutable_tags_are_never_pushed_twice(which: str) -> None:
    import tempfile
    from pathlib import Path

    from generator import topology as topology_module
    from tests.conformance.kit import TOPOLOGIES
    from tests.workloads.workloads_kit import write_project

    assert _repository(which)["ImageTagMutability"] == "IMMUTABLE"
    with tempfile.TemporaryDirectory() as directory:
        # Tags follow the build contexts' content, so the build directories must exist.
        path = write_project(Path(directory), TOPOLOGIES[which])
        topology = topology_module.load(path)
        first = [image.tag for image in build_images.images(topology)]
        second = [image.tag for image in build_images.images(topology)]
    assert first and len(first) == len(set(first))  # one push per tag within a run
    # A tag names one content (its digest), and the build step pushes a tag only when the
    # repository does not have it (tests/workloads/test_workloads_build_images.py), so a
    # push never meets ImageTagAlreadyExistsException.
    assert first == second


def images_are_scanned_on_push(which: str) -> None:
    assert _repository(which).get("ImageScanningConfiguration", {}).get("ScanOnPush") is True


def lifecycle_rule_priorities_are_unique_and_any_is_last(which: str) -> None:
    text = _repository(which)["LifecyclePolicy"]["LifecyclePolicyText"]
    text = text["Fn::Sub"] if isinstance(text, dict) else text
    rules = json.loads(text.replace("${ImagesToKeep}", "30"))["rules"]
    priorities = [rule["rulePriority"] for rule in rules]
    assert rules and len(priorities) == len(set(priorities))
    for rule in rules:
        if rule["selection"]["tagStatus"] == "any":
            assert rule["rulePriority"] == max(priorities)


PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:GetAuthorizationToken")


def execution_roles_pull_from_the_pipeline_repository(which: str) -> None:
    service = documents(which)["service.yaml"]
    role = dict(resources(service, "AWS::IAM::Role"))["ExecutionRole"]
    granted = [s for s in role_statements(role) if s["Effect"] == "Allow"]
    for action in PULL_ACTIONS:
        assert any(allows(s["Action"], action) for s in granted), action
    token = next(s for s in granted if "ecr:GetAuthorizationToken" in listed(s["Action"]))
    assert listed(token["Resource"]) == ["*"]  # the token is for the registry, not a repository
    pull = next(s for s in granted if "ecr:BatchGetImage" in listed(s["Action"]))
    patterns = [r["Fn::Sub"] for r in listed(pull["Resource"])
                if isinstance(r, dict) and "Fn::Sub" in r]
    # The pipeline's repository is named <app>/service-<stack id part>.
    name = _repository(which)["RepositoryName"]["Fn::Join"][1][0]
    app = parsed(which).app
    assert name == f"{app}/service-"
    assert any(p.endswith(":repository/${AppName}/service-*") for p in patterns), patterns
    # An image in another private repository (topology.yaml's image) is pulled from there.
    assert "PullRepositoryArn" in json.dumps(pull["Resource"])


# --- the permissions boundary -------------------------------------------------------------

def roles_need_nothing_beyond_the_boundary(which: str) -> None:
    boundary = [action for s in boundary_statements(which) for action in listed(s["Action"])]
    checked = 0
    for name, logical_id, role in all_resources(which, "AWS::IAM::Role"):
        if name == "bootstrap.yaml":
            continue  # the deploy role is created by an admin, without the boundary
        for statement in role_statements(role):
            if statement["Effect"] == "Allow":
                for action in listed(statement["Action"]):
                    checked += 1
                    assert allows(boundary, action), (name, logical_id, action)
    assert checked


def the_boundary_grants_nothing_by_itself(which: str) -> None:
    bootstrap = documents(which)["bootstrap.yaml"]
    boundary = dict(resources(bootstrap, "AWS::IAM::ManagedPolicy"))["PermissionsBoundary"]
    # Attached to no role as a permissions policy: it only limits.
    assert "Roles" not in boundary["Properties"]
    for _, _, role in all_resources(which, "AWS::IAM::Role"):
        assert "PermissionsBoundary" not in json.dumps(role["Properties"].get(
            "ManagedPolicyArns", []))
    # The deploy role changes a role's policies only with the boundary in place, and never
    # removes it.
    grants = [s for _, _, p in _deploy_policies(bootstrap) for s in statements(p)]
    creating = [s for s in grants if s["Effect"] == "Allow"
                and "iam:CreateRole" in listed(s["Action"])]
    assert creating and all(
        s.get("Condition", {}).get("StringEquals", {}).get("iam:PermissionsBoundary")
        == {"Ref": "PermissionsBoundary"} for s in creating)
    for action in ("iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary"):
        for statement in grants:
            if statement["Effect"] == "Allow" and action in listed(statement["Action"]):
                assert "iam:PermissionsBoundary" in json.dumps(statement.get("Condition")), action
    assert any(s["Effect"] == "Deny" and "iam:DeleteRolePermissionsBoundary"
               in listed(s["Action"]) for s in grants)


def _deploy_policies(bootstrap: dict):
    """(logical id, type, policy document) of the deploy role's managed policies."""
    for logical_id, policy in resources(bootstrap, "AWS::IAM::ManagedPolicy"):
        if logical_id != "PermissionsBoundary":
            yield logical_id, policy["Type"], policy["Properties"]["PolicyDocument"]


def app_roles_carry_the_boundary(which: str) -> None:
    checked = 0
    for name, logical_id, role in all_resources(which, "AWS::IAM::Role"):
        if name != "bootstrap.yaml":
            checked += 1
            assert role["Properties"].get("PermissionsBoundary"), (name, logical_id)
    assert checked
