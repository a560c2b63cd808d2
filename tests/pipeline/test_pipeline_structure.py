"""The generated pipeline: trigger, stages, run orders, approval, splitting, IAM."""
from __future__ import annotations

import json

import pytest

from generator import plan as plan_module
from generator import rollout
from pipeline import layout
from pipeline import stack as pipeline_stack


def resources_of(template: dict, kind: str) -> dict:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def pipeline_props(template: dict) -> dict:
    return template["Resources"]["Pipeline"]["Properties"]


def stage_names(template: dict) -> list[str]:
    names = []
    for stage in pipeline_props(template)["Stages"]:
        if "Fn::If" in stage:
            names.append(stage["Fn::If"][1]["Name"])
        else:
            names.append(stage["Name"])
    return names


def deploy_actions(template: dict) -> list[tuple[str, dict]]:
    """(stage name, action) for every service deploy action, in pipeline order."""
    return [(stage["Name"], action) for stage in pipeline_props(template)["Stages"]
            if "Name" in stage and stage["Name"].startswith(layout.STAGE_PREFIX)
            for action in stage["Actions"]]


def test_trigger_is_a_push_to_the_branch_parameter(seed_pipeline):
    props = pipeline_props(seed_pipeline)
    assert props["PipelineType"] == "V2"
    (trigger,) = props["Triggers"]
    assert trigger["ProviderType"] == "CodeStarSourceConnection"
    assert trigger["GitConfiguration"]["SourceActionName"] == "Source"
    assert trigger["GitConfiguration"]["Push"][0]["Branches"]["Includes"] == [{"Ref": "BranchName"}]
    assert seed_pipeline["Parameters"]["BranchName"]["Default"] == "main"
    source = props["Stages"][0]["Actions"][0]
    assert source["Configuration"]["ConnectionArn"] == {"Ref": "ConnectionArn"}


def test_stage_order(seed_pipeline):
    assert stage_names(seed_pipeline) == [
        "Source", "Build", "UpdatePipeline", "Approval", "Cluster", "Deploy-1", "Verify"]


def test_verify_is_the_last_action_and_runs_the_verify_command(seed_pipeline, repo_root):
    (action,) = pipeline_props(seed_pipeline)["Stages"][-1]["Actions"]
    assert action["ActionTypeId"]["Provider"] == "CodeBuild"
    project = seed_pipeline["Resources"][action["Configuration"]["ProjectName"]["Ref"]]
    buildspec = repo_root / project["Properties"]["Source"]["BuildSpec"]
    assert "python -m generator verify --topology topology.yaml" in buildspec.read_text()
    role = seed_pipeline["Resources"][project["Properties"]["ServiceRole"]["Fn::GetAtt"][0]]
    actions = {a for statement in role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
               for a in statement["Action"]}
    assert {"ecs:DescribeServices", "servicediscovery:DiscoverInstances",
            "cloudformation:DescribeStacks"} <= actions
    assert not any(a.split(":")[1].startswith(("Create", "Update", "Delete", "Put"))
                   for a in actions if not a.startswith("logs:"))


def test_approval_stage_exists_only_when_switched_on(seed_pipeline):
    stages = pipeline_props(seed_pipeline)["Stages"]
    (approval,) = [s for s in stages if "Fn::If" in s]
    condition, stage, otherwise = approval["Fn::If"]
    assert condition == pipeline_stack.APPROVAL_REQUIRED
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert stage["Actions"][0]["ActionTypeId"]["Provider"] == "Manual"
    assert seed_pipeline["Conditions"][condition] == {
        "Fn::Equals": [{"Ref": "RequireApproval"}, "true"]}
    # Approval comes after the self-update and before any app stack.
    names = stage_names(seed_pipeline)
    assert names.index("UpdatePipeline") < names.index("Approval") < names.index("Cluster")


def test_update_pipeline_deploys_itself_and_keeps_its_parameters(seed_pipeline):
    stage = next(s for s in pipeline_props(seed_pipeline)["Stages"]
                 if s.get("Name") == "UpdatePipeline")
    config = stage["Actions"][0]["Configuration"]
    assert config["StackName"] == {"Ref": "AWS::StackName"}
    assert config["TemplatePath"] == "BuildOutput::templates/pipeline.yaml"
    passed = config["ParameterOverrides"]["Fn::Sub"]
    body = passed[0] if isinstance(passed, list) else passed
    for name in seed_pipeline["Parameters"]:
        assert f'"{name}":"${{{name}}}"' in body, name


def test_cluster_stack_gets_every_cluster_parameter(seed_pipeline, repo_root):
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    cluster = yaml.load((repo_root / "templates/cluster.yaml").read_text(), Loader=Loader)
    stage = next(s for s in pipeline_props(seed_pipeline)["Stages"] if s.get("Name") == "Cluster")
    action = next(a for a in stage["Actions"] if a["Name"] == "Cluster")
    body = action["Configuration"]["ParameterOverrides"]["Fn::Sub"][0]
    assert set(json.loads(body.replace("${", "").replace("}\"", "\""))) == set(cluster["Parameters"])


def test_seed_pair_deploys_in_parallel_then_both_redeploy(seed_pipeline, seed_topology, seed_plan):
    actions = deploy_actions(seed_pipeline)
    assert [(a["Name"], a["RunOrder"]) for _, a in actions] == [
        ("server", 1), ("client", 1), ("server-redeploy", 2), ("client-redeploy", 2)]
    for _, action in actions:
        overrides = json.loads(action["Configuration"]["ParameterOverrides"])
        service = action["Name"].removesuffix("-redeploy")
        if action["Name"].endswith("-redeploy"):
            assert overrides["DeploymentNonce"] == rollout.nonce(seed_topology, seed_plan, service)
        else:
            assert overrides["DeploymentNonce"] == {
                "Fn::GetParam": ["LiveParameters", f"{service}.json", "DeploymentNonce"]}


def test_run_orders_follow_the_deploy_order(topology_of):
    topology = topology_of({"db": [], "cache": [], "api": ["db", "cache"], "web": ["api"],
                            "admin": ["db"]})
    template = pipeline_stack.build(topology).to_dict()
    order = {a["Name"]: a["RunOrder"] for _, a in deploy_actions(template)}
    assert order == {"db": 1, "cache": 1, "admin": 2, "api": 2, "web": 3}
    # Every callee runs strictly before its caller.
    for service in topology.services:
        for callee in service.calls:
            assert order[callee] < order[service.name]


def test_deploy_action_configuration(seed_pipeline):
    _, action = deploy_actions(seed_pipeline)[0]
    config = action["Configuration"]
    assert action["ActionTypeId"]["Provider"] == "CloudFormation"
    assert config["ActionMode"] == "CREATE_UPDATE"
    assert config["StackName"] == "demo-server"
    assert config["TemplatePath"] == "BuildOutput::templates/service.yaml"
    assert config["TemplateConfiguration"] == "BuildOutput::templates/params/server.json"
    # The deploy role lives in the bootstrap stack (issue 8).
    assert config["RoleArn"] == {"Fn::ImportValue": "demo-bootstrap-DeployRoleArn"}
    assert json.loads(config["ParameterOverrides"])["ImageUri"] == {
        "Fn::GetParam": ["BuildOutput", "image.json", "ImageUri"]}


@pytest.mark.parametrize("shape", ["independent", "chain", "pairs"])
def test_120_services_split_into_valid_stages(big_topologies, shape):
    topology = big_topologies[shape]
    template = pipeline_stack.build(topology).to_dict()
    stages = [s for s in pipeline_props(template)["Stages"] if "Name" in s]
    assert len(stages) + 1 <= layout.MAX_STAGES_PER_PIPELINE  # +1: the conditional approval
    deployed = []
    for stage in stages:
        actions = stage["Actions"]
        assert len(actions) <= layout.MAX_ACTIONS_PER_STAGE
        assert len({a["Name"] for a in actions}) == len(actions)
        run_orders = sorted({a["RunOrder"] for a in actions})
        assert run_orders == list(range(1, len(run_orders) + 1))
        assert len(run_orders) <= layout.MAX_RUN_ORDERS_PER_STAGE
        deployed += [a["Name"] for a in actions if stage["Name"].startswith("Deploy-")]
    services = [s.name for s in topology.services]
    assert sorted(n for n in deployed if not n.endswith("-redeploy")) == sorted(services)
    # Deploy order holds across stages: position of each callee's deploy < its caller's.
    position = {}
    for stage_index, stage in enumerate(stages):
        for action in stage["Actions"]:
            position.setdefault(action["Name"], (stage_index, action["RunOrder"]))
    cycle_of = {name: cycle for cycle in plan_module.build(topology).cycles for name in cycle}
    for service in topology.services:
        for callee in service.calls:
            if callee in cycle_of.get(service.name, ()):
                assert f"{service.name}-redeploy" in position  # covered by the redeploy
                assert position[f"{service.name}-redeploy"] > position[callee]
            else:
                assert position[callee] < position[service.name]


def test_120_services_layout_is_deterministic(big_topologies):
    topology = big_topologies["independent"]
    first = layout.stages(topology, plan_module.build(topology))
    assert first == layout.stages(topology, plan_module.build(topology))
    assert [stage.action_count for stage in first] == [50, 50, 20]


def test_pairs_redeploy_after_their_wave(big_topologies):
    topology = big_topologies["pairs"]
    steps = layout.steps(topology, plan_module.build(topology))
    assert steps[0].services == ("svc000", "svc001") and not steps[0].is_redeploy
    assert steps[1].services == ("svc000", "svc001") and steps[1].is_redeploy


def test_parameter_overrides_fit_in_a_kilobyte_for_the_longest_name(topology_of):
    name = "s" + "x" * 62
    topology = topology_of({name: ["b"], "b": [name]})
    template = pipeline_stack.build(topology).to_dict()
    for _, action in deploy_actions(template):
        assert len(action["Configuration"]["ParameterOverrides"]) <= 1024


def _statements(template: dict):
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = [props.get("PolicyDocument"), props.get("AssumeRolePolicyDocument")]
        documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        for document in filter(None, documents):
            for statement in document["Statement"]:
                yield name, statement


def test_no_wildcard_actions(seed_pipeline):
    statements = list(_statements(seed_pipeline))
    assert len(statements) > 10
    for name, statement in statements:
        assert "NotAction" not in statement
        if statement["Effect"] == "Deny":
            continue  # a Deny grants nothing; the bucket's TLS-only rule denies s3:*
        actions = statement.get("Action", [])
        for action in actions if isinstance(actions, list) else [actions]:
            assert "*" not in action, f"{name}: {action}"


def test_artifact_bucket_refuses_every_action_without_tls(seed_pipeline):
    (policy,) = resources_of(seed_pipeline, "AWS::S3::BucketPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == ["s3:*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_wildcard_resources_only_where_commented(repo_root):
    """Each Resource ["*"] in pipeline/iam.py sits under a comment that says why."""
    lines = (repo_root / "pipeline/iam.py").read_text().splitlines()
    hits = [i for i, line in enumerate(lines) if 'Resource=["*"]' in line]
    assert hits
    for index in hits:
        statement_start = max(i for i in range(index + 1) if "Statement(" in lines[i])
        window = lines[statement_start - 1:index + 1]
        assert any(line.strip().startswith("#") for line in window), lines[index]


def test_roles_trust_one_service_each(seed_pipeline):
    trusted = {}
    for name, role in resources_of(seed_pipeline, "AWS::IAM::Role").items():
        (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        trusted[name] = statement["Principal"]["Service"]
    assert trusted == {
        "PipelineRole": "codepipeline.amazonaws.com",
        "BuildRole": "codebuild.amazonaws.com",
        "LiveParametersRole": "codebuild.amazonaws.com",
        "VerifyRole": "codebuild.amazonaws.com",
        "DeployStepRole": "codebuild.amazonaws.com",
    }


def test_storage_is_locked_down(seed_pipeline):
    (bucket,) = resources_of(seed_pipeline, "AWS::S3::Bucket").values()
    props = bucket["Properties"]
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert props["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == {
        "Ref": "ArtifactRetentionDays"}
    (policy,) = resources_of(seed_pipeline, "AWS::S3::BucketPolicy").values()
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (repository,) = resources_of(seed_pipeline, "AWS::ECR::Repository").values()
    assert repository["Properties"]["ImageTagMutability"] == "IMMUTABLE"
    assert repository["Properties"]["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert "imageCountMoreThan" in json.dumps(repository["Properties"]["LifecyclePolicy"])
