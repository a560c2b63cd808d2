"""Issue 16 item 3: with `environments:` the pipeline builds once and promotes that build
through one stage per environment, in order: an approval first where the environment asks
for one, then Deploy and Verify on the same BuildOutput with the same two projects, each
action naming its environment (the CodeBuild action's EnvironmentVariables,
https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-CodeBuild.html).
Without environments the template is what it was (templates/pipeline.yaml, the golden file)."""
from __future__ import annotations

import json

import pytest
import yaml

from generator import lint, quotacheck, render
from generator.awsfacts import quotas
from generator.stacks import cluster as cluster_stack
from generator.topology.environments import MAX_ENVIRONMENTS
from pipeline import promotion
from pipeline import stack as pipeline_stack
from promotion_kit import PRODUCTION_ACCOUNT, rendered, topology_with, two_environments


@pytest.fixture(scope="module")
def template() -> dict:
    return rendered(two_environments())


def stages(template: dict) -> list[dict]:
    return template["Resources"]["Pipeline"]["Properties"]["Stages"]


def environment_stages(template: dict) -> dict[str, dict]:
    return {s["Name"]: s for s in stages(template) if s["Name"].startswith("Deploy-")}


def _many_environments(count: int):
    def edit(document):
        production = document["environments"]["production"]
        document["environments"] = {
            f"env{i}": {**production, "account": f"{100000000000 + i}"} for i in range(count)}
    return topology_with(edit)


def test_stages_are_build_once_then_each_environment_in_order(template):
    assert [s["Name"] for s in stages(template)] == [
        "Source", "Build", "UpdatePipeline", "Deploy-staging", "Deploy-production"]


def test_the_order_is_topology_yamls():
    def swap(document):
        document["environments"] = dict(reversed(list(document["environments"].items())))
    names = [s["Name"] for s in stages(rendered(topology_with(swap)))]
    assert names[3:] == ["Deploy-production", "Deploy-staging"]


def _actions(stage: dict) -> list[tuple[str, str, int]]:
    return [(a["Name"], a["ActionTypeId"]["Category"], a["RunOrder"]) for a in stage["Actions"]]


def test_an_approval_comes_first_only_where_the_environment_asks(template):
    by_name = environment_stages(template)
    assert _actions(by_name["Deploy-staging"]) == [("Deploy", "Build", 1), ("Verify", "Test", 2)]
    assert _actions(by_name["Deploy-production"]) == [
        ("Approve", "Approval", 1), ("Deploy", "Build", 2), ("Verify", "Test", 3)]


def test_the_approval_follows_the_flag_not_the_name():
    def flip(document):
        document["environments"]["staging"]["approval"] = True
        document["environments"]["production"]["approval"] = False
    by_name = environment_stages(rendered(topology_with(flip)))
    assert [a["Name"] for a in by_name["Deploy-staging"]["Actions"]] == ["Approve", "Deploy", "Verify"]
    assert [a["Name"] for a in by_name["Deploy-production"]["Actions"]] == ["Deploy", "Verify"]


def test_every_environment_deploys_the_same_build_with_the_same_two_projects(template):
    for stage in environment_stages(template).values():
        runs = {a["Name"]: a for a in stage["Actions"] if a["Name"] != "Approve"}
        assert [a["InputArtifacts"] for a in runs.values()] == [
            [{"Name": pipeline_stack.BUILD_ARTIFACT}]] * 2
        assert runs["Deploy"]["Configuration"]["ProjectName"] == {"Ref": "DeployProject"}
        assert runs["Verify"]["Configuration"]["ProjectName"] == {"Ref": "VerifyProject"}
        assert all("OutputArtifacts" not in a for a in runs.values())
    # Only Build produces an artifact: nothing is rebuilt on the way to production.
    produced = [a["OutputArtifacts"] for s in stages(template) for a in s["Actions"]
                if isinstance(a.get("OutputArtifacts"), list)]
    assert produced == [[{"Name": pipeline_stack.SOURCE_ARTIFACT}],
                        [{"Name": pipeline_stack.BUILD_ARTIFACT}]]


def test_the_projects_do_not_grow_with_the_environments(template):
    many = rendered(_many_environments(MAX_ENVIRONMENTS))
    for document in (template, many):
        projects = [n for n, r in document["Resources"].items()
                    if r["Type"] == "AWS::CodeBuild::Project"]
        assert sorted(projects) == ["BuildProject", "DeployProject", "VerifyProject"]
    assert len(environment_stages(many)) == MAX_ENVIRONMENTS


def test_each_deploy_and_verify_names_its_environment(template):
    for name, stage in environment_stages(template).items():
        for action in stage["Actions"]:
            if action["Name"] == "Approve":
                continue
            assert json.loads(action["Configuration"]["EnvironmentVariables"]) == [
                {"name": "ENVIRONMENT", "value": name.removeprefix("Deploy-"),
                 "type": "PLAINTEXT"}]


def test_the_network_and_the_approval_switch_are_topology_yamls(template, seed_pipeline):
    network = set(pipeline_stack.NETWORK_PARAMETERS) | {"RequireApproval"}
    assert network <= set(seed_pipeline["Parameters"])
    assert not network & set(template["Parameters"])
    assert "Conditions" not in seed_pipeline or pipeline_stack.APPROVAL_REQUIRED in seed_pipeline["Conditions"]
    assert pipeline_stack.APPROVAL_REQUIRED not in template.get("Conditions", {})
    deploy = template["Resources"]["DeployProject"]["Properties"]["Environment"]
    assert [v["Name"] for v in deploy["EnvironmentVariables"]] == ["TEMPLATE_BUCKET"]
    # UpdatePipeline passes back exactly the parameters this template has.
    update = stages(template)[2]["Actions"][0]["Configuration"]["ParameterOverrides"]["Fn::Sub"]
    assert sorted(json.loads(update)) == sorted(template["Parameters"])
    assert cluster_stack.VPC not in update


def test_the_build_gets_the_environment_names_and_this_runs_id(template):
    build = template["Resources"]["BuildProject"]["Properties"]["Environment"]
    variables = {v["Name"]: v["Value"] for v in build["EnvironmentVariables"]}
    assert variables["ENVIRONMENTS"] == "staging production"
    assert variables["ARTIFACT_BUCKET"] == {"Ref": "ArtifactBucket"}
    (action,) = stages(template)[1]["Actions"]
    assert action["Namespace"] == promotion.BUILD_NAMESPACE
    assert json.loads(action["Configuration"]["EnvironmentVariables"]) == [
        {"name": "PIPELINE_EXECUTION_ID", "value": "#{codepipeline.PipelineExecutionId}",
         "type": "PLAINTEXT"}]


def test_the_approval_says_what_it_guards_and_links_this_runs_report(template, repo_root):
    (approve,) = [a for a in environment_stages(template)["Deploy-production"]["Actions"]
                  if a["Name"] == "Approve"]
    configuration = approve["Configuration"]
    text = configuration["CustomData"]["Fn::Sub"]
    assert "production" in text and PRODUCTION_ACCOUNT in text and len(text) < 512
    assert text.endswith("s3://${ArtifactBucket}/#{BuildVariables.APPROVAL_REPORTS}"
                         "approval-production.html")
    link = configuration["ExternalEntityLink"]["Fn::Sub"]
    assert link.startswith("https://${AWS::Region}.console.aws.amazon.com/s3/object/"
                           "${ArtifactBucket}?region=${AWS::Region}&prefix=")
    assert link.endswith("#{BuildVariables.APPROVAL_REPORTS}approval-production.html")
    # The Build writes, exports and uploads exactly what the link names.
    buildspec = yaml.safe_load((repo_root / "buildspec.yml").read_text())
    assert buildspec["env"]["exported-variables"] == [promotion.REPORTS_VARIABLE]
    pre_build = "\n".join(buildspec["phases"]["pre_build"]["commands"])
    assert ('export APPROVAL_REPORTS="approval-reports/${PIPELINE_EXECUTION_ID:-none}/"'
            in pre_build)
    assert '--format html --output "reports/approval-${E}.html"' in pre_build
    assert '"s3://${ARTIFACT_BUCKET}/${APPROVAL_REPORTS}approval-${E}.html"' in pre_build


def test_the_promoting_pipeline_fits_codepipelines_quotas(template):
    """quotacheck._check_pipeline counts each stage (an If-wrapped one as one) and its
    actions: 5 stages, at most 3 actions, 8 in all here; and 10 environments (the most
    topology.yaml allows) stay inside 50 stages and 50 actions a stage."""
    quotacheck._check_pipeline(template)
    counted = [len(s["Actions"]) for s in stages(template)]
    assert (len(counted), max(counted), sum(counted)) == (5, 3, 8)
    many = rendered(_many_environments(MAX_ENVIRONMENTS))
    quotacheck._check_pipeline(many)
    assert len(stages(many)) == 3 + MAX_ENVIRONMENTS <= quotas.STAGES_PER_PIPELINE.limit
    # The check does refuse a pipeline over the stage quota.
    over = json.loads(json.dumps(many))
    over["Resources"]["Pipeline"]["Properties"]["Stages"] *= 5
    with pytest.raises(quotacheck.QuotaError, match="stages"):
        quotacheck._check_pipeline(over)


def test_the_promoting_pipeline_is_lint_clean(tmp_path):
    paths = []
    for name, topology in (("two", two_environments()),
                           ("ten", _many_environments(MAX_ENVIRONMENTS))):
        path = tmp_path / f"pipeline-{name}.yaml"
        path.write_bytes(render.template_bytes(pipeline_stack.build(topology)))
        paths.append(path)
    assert lint.lint_templates(paths) == []


def test_without_environments_nothing_of_this_is_rendered(seed_pipeline):
    resources = seed_pipeline["Resources"]
    assert not [r for r in resources.values() if r["Type"] == "AWS::KMS::Key"]
    assert "RepositoryPolicyText" not in resources["ImageRepository"]["Properties"]
    props = resources["Pipeline"]["Properties"]
    assert "EncryptionKey" not in props["ArtifactStore"]
    assert [s["Name"] if "Name" in s else s["Fn::If"][1]["Name"] for s in props["Stages"]] == [
        "Source", "Build", "UpdatePipeline", "Approval", "Deploy", "Verify"]
    assert "Namespace" not in props["Stages"][1]["Actions"][0]
