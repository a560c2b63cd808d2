"""The generated pipeline: trigger, stages, the one Deploy step, approval, IAM, storage."""
from __future__ import annotations

import json

import yaml

from pipeline import stack as pipeline_stack


def resources_of(template: dict, kind: str) -> dict:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def pipeline_props(template: dict) -> dict:
    return template["Resources"]["Pipeline"]["Properties"]


def stage_names(template: dict) -> list[str]:
    names_ = []
    for stage in pipeline_props(template)["Stages"]:
        if "Fn::If" in stage:
            names_.append(stage["Fn::If"][1]["Name"])
        else:
            names_.append(stage["Name"])
    return names_


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
        "Source", "Build", "UpdatePipeline", "Approval", "Deploy", "Verify"]


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
    assert names.index("UpdatePipeline") < names.index("Approval") < names.index("Deploy")


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


def test_update_pipeline_runs_as_the_bootstrap_deploy_role(seed_pipeline, seed_topology):
    stage = next(s for s in pipeline_props(seed_pipeline)["Stages"]
                 if s.get("Name") == "UpdatePipeline")
    role = stage["Actions"][0]["Configuration"]["RoleArn"]
    # The role lives in the bootstrap stack, so updating or deleting this stack never
    # touches the role that the operation runs as.
    assert role == {"Fn::ImportValue": f"{seed_topology.bootstrap_stack_name}-DeployRoleArn"}
    assert not resources_of(seed_pipeline, "AWS::IAM::Role").keys() & {"CloudFormationDeployRole"}


def test_deploy_step_runs_the_boto3_deployer_with_every_cluster_parameter(seed_pipeline,
                                                                          repo_root):
    stage = next(s for s in pipeline_props(seed_pipeline)["Stages"] if s.get("Name") == "Deploy")
    (action,) = stage["Actions"]
    assert action["ActionTypeId"]["Provider"] == "CodeBuild"
    assert action["InputArtifacts"] == [{"Name": pipeline_stack.BUILD_ARTIFACT}]
    project = seed_pipeline["Resources"][action["Configuration"]["ProjectName"]["Ref"]]
    spec = yaml.safe_load((repo_root / project["Properties"]["Source"]["BuildSpec"]).read_text())
    command = " ".join(spec["phases"]["build"]["commands"])
    assert "python -m generator deploy --topology topology.yaml" in command
    variables = {v["Name"]: v["Value"]
                 for v in project["Properties"]["Environment"]["EnvironmentVariables"]}
    for variable in variables:
        assert "${" + variable + "}" in command, variable
    assert variables["VPC_ID"] == {"Ref": "VpcId"}
    assert variables["PUBLIC_SUBNET_IDS"] == {"Fn::Join": [",", {"Ref": "PublicSubnetIds"}]}
    for flag in ("--vpc-id", "--subnets", "--public-subnets", "--role-arn",
                 "--template-bucket", "--images"):
        assert flag in command


def test_pipeline_does_not_depend_on_the_services(topology_of, big_topologies):
    """The same template for 2 services, 120 or a public one: a topology change never
    changes the pipeline's definition or parameters (nothing for a self-update to break)."""
    base = pipeline_stack.build(topology_of({"a": ["b"], "b": []})).to_json()
    for topology in big_topologies.values():
        assert pipeline_stack.build(topology).to_json() == base
    import generator.topology as topology_module

    public = topology_module.parse(
        "app: demo\nnamespace: my.demo\nservices:\n  web: {port: 8080, public: true}\n", "t.yaml")
    assert pipeline_stack.build(public).to_json() == base


def test_public_subnets_are_optional_and_always_declared(seed_pipeline):
    parameter = seed_pipeline["Parameters"]["PublicSubnetIds"]
    assert parameter["Type"] == "CommaDelimitedList" and parameter["Default"] == ""


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
        "DeployStepRole": "codebuild.amazonaws.com",
        "VerifyRole": "codebuild.amazonaws.com",
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


def test_the_pipeline_role_changes_only_its_own_stack(seed_pipeline):
    """The app's stacks are the deploy step's (as the deploy role); the pipeline itself
    only runs UpdatePipeline on its own stack."""
    role = seed_pipeline["Resources"]["PipelineRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    (cloudformation,) = [s for s in statements
                         if any(a.startswith("cloudformation:") for a in s["Action"])]
    assert cloudformation["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:cloudformation:"
                                           "${AWS::Region}:${AWS::AccountId}:stack/"
                                           "${AWS::StackName}/*"}]
