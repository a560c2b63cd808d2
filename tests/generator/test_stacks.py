"""Structure of the generated cluster and service templates (as CloudFormation sees them)."""
from __future__ import annotations

import json

import pytest

from generator import fargate, names, params
from generator.stacks import cluster, service


def as_dict(template) -> dict:
    # Through JSON, as CloudFormation receives it: troposphere objects become plain data.
    return json.loads(template.to_json())


@pytest.fixture
def cluster_template(rich_topology) -> dict:
    return as_dict(cluster.build(rich_topology))


@pytest.fixture
def service_template(rich_topology) -> dict:
    return as_dict(service.build(rich_topology))


def resources_of_type(template: dict, kind: str) -> dict:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_cluster_points_service_connect_at_the_namespace_by_arn(cluster_template):
    (namespace,) = resources_of_type(cluster_template, "AWS::ServiceDiscovery::PrivateDnsNamespace").values()
    assert namespace["Properties"]["Name"] == "internal.shop"
    assert namespace["Properties"]["Vpc"] == {"Ref": "VpcId"}
    (ecs_cluster,) = resources_of_type(cluster_template, "AWS::ECS::Cluster").values()
    assert ecs_cluster["Properties"]["ServiceConnectDefaults"] == {
        "Namespace": {"Fn::GetAtt": ["Namespace", "Arn"]}}


def test_network_parameters_are_console_drop_downs(cluster_template, default_topology):
    parameters = cluster_template["Parameters"]
    assert parameters["VpcId"]["Type"] == "AWS::EC2::VPC::Id"
    assert parameters["PrivateSubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert parameters["PublicSubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    # No public service, no public subnets to ask for.
    assert "PublicSubnetIds" not in as_dict(cluster.build(default_topology))["Parameters"]


def test_each_caller_may_reach_its_callee_on_the_container_port_only(cluster_template, rich_topology):
    ingress = resources_of_type(cluster_template, "AWS::EC2::SecurityGroupIngress")
    expected = set()
    for caller in rich_topology.services:
        for callee in rich_topology.callees(caller):
            expected.add((caller.name, callee.name, callee.port))
    seen = set()
    group_owner = {names.security_group_logical_id(s.name): s.name for s in rich_topology.services}
    for rule in ingress.values():
        props = rule["Properties"]
        assert "CidrIp" not in props and "CidrIpv6" not in props
        assert props["IpProtocol"] == "tcp" and props["FromPort"] == props["ToPort"]
        callee = group_owner[props["GroupId"]["Fn::GetAtt"][0]]
        caller = group_owner[props["SourceSecurityGroupId"]["Fn::GetAtt"][0]]
        seen.add((caller, callee, props["FromPort"]))
    assert seen == expected
    assert ("web", "orders", 8080) in seen and ("payments", "orders", 8080) in seen


def test_seed_pair_can_reach_each_other(default_topology):
    ingress = resources_of_type(as_dict(cluster.build(default_topology)), "AWS::EC2::SecurityGroupIngress")
    pairs = {(r["Properties"]["SourceSecurityGroupId"]["Fn::GetAtt"][0],
              r["Properties"]["GroupId"]["Fn::GetAtt"][0], r["Properties"]["FromPort"])
             for r in ingress.values()}
    assert pairs == {("ClientTaskSecurityGroup", "ServerTaskSecurityGroup", 8080),
                     ("ServerTaskSecurityGroup", "ClientTaskSecurityGroup", 8080)}


def test_cluster_exports_what_the_service_stack_imports(cluster_template, service_template, rich_topology):
    exports = {o["Export"]["Name"]["Fn::Sub"].removeprefix("${AWS::StackName}-")
               for o in cluster_template["Outputs"].values()}
    imported = set()

    def walk(node):
        if isinstance(node, dict):
            if "Fn::ImportValue" in node:
                imported.add(node["Fn::ImportValue"]["Fn::Sub"].removeprefix("${ClusterStackName}-"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(service_template["Resources"])
    per_service = {name for name in imported if "${ServiceName}" in name}
    assert per_service == {names.security_group_export("${ServiceName}")}
    for svc in rich_topology.services:
        assert names.security_group_export(svc.name) in exports
    assert imported - per_service <= exports


def test_service_connect_is_always_emitted(service_template):
    (svc,) = resources_of_type(service_template, "AWS::ECS::Service").values()
    connect = svc["Properties"]["ServiceConnectConfiguration"]
    assert connect["Enabled"] is True
    assert connect["Namespace"] == {"Fn::ImportValue": {"Fn::Sub": "${ClusterStackName}-NamespaceArn"}}
    (entry,) = connect["Services"]
    assert entry["PortName"] == names.PORT_NAME
    assert entry["DiscoveryName"] == {"Ref": "DiscoveryName"}
    assert len(entry["ClientAliases"]) == 1
    assert entry["ClientAliases"][0]["Port"] == {"Ref": "ContainerPort"}
    assert set(entry["Timeout"]) == {"PerRequestTimeoutSeconds", "IdleTimeoutSeconds"}
    assert connect["LogConfiguration"]["LogDriver"] == "awslogs"
    assert connect["AccessLogConfiguration"]["Format"] == "JSON"
    deployment = svc["Properties"]["DeploymentConfiguration"]
    assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert svc["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"


def test_task_definition_port_mapping_logs_and_health_check(service_template):
    (task,) = resources_of_type(service_template, "AWS::ECS::TaskDefinition").values()
    props = task["Properties"]
    assert props["NetworkMode"] == "awsvpc" and props["RequiresCompatibilities"] == ["FARGATE"]
    (container,) = props["ContainerDefinitions"]
    (mapping,) = container["PortMappings"]
    assert mapping == {"Name": names.PORT_NAME, "ContainerPort": {"Ref": "ContainerPort"},
                       "Protocol": "tcp", "AppProtocol": "http"}
    options = container["LogConfiguration"]["Options"]
    assert options["mode"] == "non-blocking" and options["max-buffer-size"] == "25m"
    assert container["HealthCheck"]["Command"] == service.HEALTH_CHECK_COMMAND
    env = {e["Name"]: e["Value"] for e in container["Environment"] if "Name" in e}
    assert env["PEER_URLS"] == {"Ref": "PeerUrls"}
    assert env["SERVICE_NAME"] == {"Ref": "ServiceName"}
    # Extra variables are present only when their parameter is non-empty.
    optional = [e for e in container["Environment"] if "Fn::If" in e]
    assert [e["Fn::If"][1]["Name"] for e in optional] == ["FEATURE_X", "LOG_LEVEL"]
    assert all(e["Fn::If"][2] == {"Ref": "AWS::NoValue"} for e in optional)


def test_load_balancer_is_conditional_and_uses_every_public_subnet(service_template):
    for logical_id in ("LoadBalancer", "Listener", "TargetGroup", "LoadBalancerSecurityGroup",
                       "LoadBalancerToTasksIngress"):
        assert service_template["Resources"][logical_id]["Condition"] == service.IS_PUBLIC
    lb = service_template["Resources"]["LoadBalancer"]["Properties"]
    assert lb["Scheme"] == "internet-facing"
    assert lb["Subnets"] == {"Fn::Split": [",", {"Fn::ImportValue": {
        "Fn::Sub": "${ClusterStackName}-PublicSubnetIds"}}]}
    to_tasks = service_template["Resources"]["LoadBalancerToTasksIngress"]["Properties"]
    assert "SourceSecurityGroupId" in to_tasks and "CidrIp" not in to_tasks
    assert to_tasks["FromPort"] == to_tasks["ToPort"] == {"Ref": "ContainerPort"}
    assert service_template["Parameters"]["PublicLoadBalancer"]["Default"] == "false"


def test_every_parameter_is_described_constrained_and_grouped(service_template):
    parameters = service_template["Parameters"]
    interface = service_template["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [p for group in interface["ParameterGroups"] for p in group["Parameters"]]
    assert sorted(grouped) == sorted(parameters)
    assert len(grouped) == len(set(grouped))
    assert set(interface["ParameterLabels"]) == set(parameters)
    constraint_keys = {"AllowedValues", "AllowedPattern", "MinValue", "MaxValue", "MaxLength"}
    for name, spec in parameters.items():
        assert spec.get("Description"), name
        assert constraint_keys & set(spec), f"{name} has no constraint"


def test_rules_reject_exactly_the_invalid_fargate_pairs(service_template):
    rules = service_template["Rules"]
    assert len(rules) == len(fargate.CPU_VALUES)
    for cpu in fargate.CPU_VALUES:
        rule = rules[f"FargateMemoryForCpu{cpu}"]
        assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "Cpu"}, str(cpu)]}
        allowed = rule["Assertions"][0]["Assert"]["Fn::Contains"][0]
        assert allowed == [str(m) for m in fargate.MEMORY_BY_CPU[cpu]]
    assert fargate.MEMORY_BY_CPU[2048] == tuple(range(4096, 16385, 1024))


def test_iam_has_no_wildcard_actions_and_star_resources_only_where_required(service_template):
    star_actions = set()
    for role in resources_of_type(service_template, "AWS::IAM::Role").values():
        policies = role["Properties"].get("Policies", [])
        for policy in policies:
            document = policy["Fn::If"][1] if "Fn::If" in policy else policy
            for statement in document["PolicyDocument"]["Statement"]:
                assert all("*" not in action for action in statement["Action"])
                if statement["Resource"] == ["*"]:
                    star_actions.update(statement["Action"])
    assert star_actions == {"ecr:GetAuthorizationToken", "ssmmessages:CreateControlChannel",
                            "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
                            "ssmmessages:OpenDataChannel"}


def test_service_template_does_not_grow_with_services(rich_topology, default_topology):
    rich = as_dict(service.build(rich_topology))
    plain = as_dict(service.build(default_topology))
    assert set(rich["Resources"]) == set(plain["Resources"])
    # Only the extra-environment slots differ.
    assert set(rich["Parameters"]) - set(plain["Parameters"]) == {"EnvFeatureX", "EnvLogLevel"}


def test_params_files_cover_the_template_and_carry_the_topology(rich_topology):
    template_parameters = as_dict(service.build(rich_topology))["Parameters"]
    web = params.configuration(rich_topology, rich_topology.service("web"))
    values = web["Parameters"]
    assert set(values) <= set(template_parameters)
    required = {k for k, v in template_parameters.items() if "Default" not in v}
    assert required - set(values) == set(names.DEPLOY_TIME_PARAMETERS) & required
    assert values["PeerUrls"] == "http://orders.internal.shop:8080,http://catalog.internal.shop:9000"
    assert values["PublicLoadBalancer"] == "true"
    assert values["EnvLogLevel"] == "debug" and values["EnvFeatureX"] == "true"
    catalog = params.parameters(rich_topology, rich_topology.service("catalog"))
    assert catalog["PeerUrls"] == "" and catalog["EnvLogLevel"] == ""
    assert all(isinstance(v, str) for v in values.values())
    assert web["Tags"]["service"] == "web"


def test_public_subnets_export_exists_even_without_public_services(default_topology):
    outputs = as_dict(cluster.build(default_topology))["Outputs"]
    export = outputs[names.PUBLIC_SUBNETS]
    assert export["Export"]["Name"] == {"Fn::Sub": "${AWS::StackName}-PublicSubnetIds"}
    assert export["Value"] == cluster.NO_PUBLIC_SUBNETS
