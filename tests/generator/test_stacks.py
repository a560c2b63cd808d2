"""Structure of the generated cluster, network, ingress and service templates (as
CloudFormation sees them)."""
from __future__ import annotations

import json

import pytest

from generator import fargate, names, params
from generator.stacks import cluster, ingress, network, service


def as_dict(template) -> dict:
    # Through JSON, as CloudFormation receives it: troposphere objects become plain data.
    return json.loads(template.to_json())


@pytest.fixture
def cluster_template(rich_topology) -> dict:
    return as_dict(cluster.build(rich_topology))


@pytest.fixture
def service_template(rich_topology) -> dict:
    return as_dict(service.build(rich_topology))


@pytest.fixture
def ingress_template(rich_topology) -> dict:
    return as_dict(ingress.build(rich_topology))


def resources_of_type(template: dict, kind: str) -> dict:
    return {k: v for k, v in template["Resources"].items()
            if isinstance(v, dict) and v["Type"] == kind}


def caller_loop(template: dict) -> tuple[str, dict, str, dict]:
    """(identifier, collection, logical id template, resource) of the callers' Fn::ForEach."""
    identifier, collection, body = template["Resources"]["Fn::ForEach::CallerIngress"]
    ((logical_id, resource),) = body.items()
    return identifier, collection, logical_id, resource


def network_import(name: str) -> dict:
    return {"Fn::ImportValue": {"Fn::Sub": "${AppName}-%s-network-TaskSecurityGroupId" % name}}


def test_cluster_points_service_connect_at_the_namespace_by_arn(cluster_template):
    (namespace,) = resources_of_type(cluster_template, "AWS::ServiceDiscovery::PrivateDnsNamespace").values()
    # The namespace is a parameter (each environment has its own), whose only allowed
    # value without environments is topology.yaml's.
    assert namespace["Properties"]["Name"] == {"Ref": names.NAMESPACE_PARAMETER}
    declared = cluster_template["Parameters"][names.NAMESPACE_PARAMETER]
    assert declared["AllowedValues"] == [declared["Default"]] == ["internal.shop"]
    assert namespace["Properties"]["Vpc"] == {"Ref": "VpcId"}
    (ecs_cluster,) = resources_of_type(cluster_template, "AWS::ECS::Cluster").values()
    assert ecs_cluster["Properties"]["ServiceConnectDefaults"] == {
        "Namespace": {"Fn::GetAtt": ["Namespace", "Arn"]}}


def test_network_parameters_are_console_drop_downs(cluster_template, rich_topology):
    parameters = cluster_template["Parameters"]
    assert parameters["VpcId"]["Type"] == "AWS::EC2::VPC::Id"
    assert parameters["PrivateSubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    # Always declared and optional: the first public service changes no parameter.
    assert parameters["PublicSubnetIds"]["Type"] == "CommaDelimitedList"
    assert parameters["PublicSubnetIds"]["Default"] == ""
    assert as_dict(cluster.build(rich_topology))["Parameters"] == parameters


def test_cluster_does_not_grow_with_services(cluster_template, default_topology):
    plain = as_dict(cluster.build(default_topology))
    # The Service Connect TLS role is declared always, created only under its condition
    # (so it can outlive service_connect_tls until no service uses it).
    assert set(plain["Resources"]) == set(cluster_template["Resources"]) == {
        "Namespace", "Cluster", "NoCallersSecurityGroup", "ServiceConnectTlsRole"}
    assert {logical for logical, resource in plain["Resources"].items()
            if "Condition" not in resource} == {"Namespace", "Cluster", "NoCallersSecurityGroup"}
    assert set(plain["Outputs"]) == set(cluster_template["Outputs"])


def test_each_caller_may_reach_its_callee_on_the_container_port_only(ingress_template,
                                                                    rich_topology):
    identifier, collection, logical_id, rule = caller_loop(ingress_template)
    assert collection == {"Ref": names.CALLERS_PARAMETER}
    assert logical_id == "CallerIngress&{%s}" % identifier
    props = rule["Properties"]
    assert "CidrIp" not in props and "CidrIpv6" not in props
    assert props["IpProtocol"] == "tcp"
    assert props["FromPort"] == props["ToPort"] == {"Ref": "ContainerPort"}
    assert props["GroupId"] == network_import("${ServiceName}")
    assert props["SourceSecurityGroupId"] == network_import("${%s}" % identifier)
    assert ingress_template["Transform"] == "AWS::LanguageExtensions"
    # Besides the rules, only the callers' alarms (tests/alarms): no other ingress path.
    assert set(ingress_template["Resources"]) == {"Fn::ForEach::CallerIngress",
                                                  "Fn::ForEach::CalleeEgress",
                                                  "Fn::ForEach::CallerErrorRateAlarm"}
    # Each service lists exactly its callers; one nobody calls lists the stand-in.
    callers = {s.name: params.ingress_parameters(rich_topology, s)[names.CALLERS_PARAMETER]
               for s in rich_topology.services}
    assert callers == {"web": names.NO_CALLERS, "orders": "web,payments",
                       "payments": "orders", "catalog": "web"}


def test_seed_pair_can_reach_each_other(default_topology):
    callers = {s.name: params.ingress_parameters(default_topology, s)[names.CALLERS_PARAMETER]
               for s in default_topology.services}
    assert callers == {"server": "client", "client": "server"}


def test_the_service_template_has_no_transform_and_no_caller_rules(service_template):
    """The stack operators edit in the console: "Use current template" (UsePreviousTemplate)
    applies new parameter values only without AWS::LanguageExtensions (UpdateStack's
    UsePreviousTemplate; transform-aws-languageextensions.html, Remarks)."""
    assert "Transform" not in service_template
    assert names.CALLERS_PARAMETER not in service_template["Parameters"]
    assert not any(key.startswith("Fn::ForEach") for key in service_template["Resources"])
    assert not resources_of_type(service_template, "AWS::EC2::SecurityGroupIngress").keys() - {
        "LoadBalancerToTasksIngress"}


def test_the_ingress_stack_gets_every_parameter_from_the_topology(rich_topology,
                                                                 ingress_template):
    for service in rich_topology.services:
        values = params.ingress_parameters(rich_topology, service)
        assert set(values) == set(ingress_template["Parameters"])
        assert values["ContainerPort"] == str(service.port)


def test_no_callers_stand_in_is_a_group_no_task_carries(cluster_template, rich_topology):
    group = cluster_template["Resources"]["NoCallersSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in group
    (output,) = [o for o in cluster_template["Outputs"].values()
                 if o.get("Export", {}).get("Name") == {
                     "Fn::Sub": f"${{AppName}}-{names.NO_CALLERS}-network-TaskSecurityGroupId"}]
    assert output["Value"] == {"Fn::GetAtt": ["NoCallersSecurityGroup", "GroupId"]}
    assert names.NO_CALLERS not in {s.name for s in rich_topology.services}


def test_stacks_export_what_the_service_stack_imports(cluster_template, service_template,
                                                      ingress_template):
    cluster_exports = {o["Export"]["Name"]["Fn::Sub"].removeprefix("${AWS::StackName}-")
                       for o in cluster_template["Outputs"].values()
                       if "Export" in o and isinstance(o["Export"]["Name"], dict)}
    network_template = as_dict(network.build(default_topology_for_network()))
    (network_export,) = [o["Export"]["Name"]["Fn::Sub"]
                         for o in network_template["Outputs"].values()]
    assert network_export == "${AWS::StackName}-TaskSecurityGroupId"
    imported = set()

    def walk(node):
        if isinstance(node, dict):
            if "Fn::ImportValue" in node:
                name = node["Fn::ImportValue"]["Fn::Sub"]
                imported.add(name[0] if isinstance(name, list) else name)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(service_template["Resources"])
    walk(ingress_template["Resources"])
    from_cluster = {name.removeprefix("${ClusterStackName}-") for name in imported
                    if name.startswith("${ClusterStackName}-")}
    assert from_cluster and from_cluster <= cluster_exports
    from_networks = imported - {f"${{ClusterStackName}}-{n}" for n in from_cluster}
    # <app>-<service>-network is the network stack's name, so its export is this:
    assert from_networks == {"${AppName}-${ServiceName}-network-TaskSecurityGroupId",
                             "${AppName}-${Caller}-network-TaskSecurityGroupId",
                             "${AppName}-${Name}-network-TaskSecurityGroupId"}


def default_topology_for_network():
    from generator import topology

    return topology.parse("app: shop\nnamespace: s.local\nservices:\n  a: {port: 80}\n")


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
    # The command is a parameter (the default app's is in its params file); no command,
    # no container health check.
    condition, check, otherwise = container["HealthCheck"]["Fn::If"]
    assert condition == service.HAS_HEALTH_CHECK and otherwise == {"Ref": "AWS::NoValue"}
    assert check["Command"] == {"Ref": "HealthCheckCommand"}
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
    assert lb["Subnets"] == {"Ref": names.LOAD_BALANCER_SUBNETS_PARAMETER}
    rule = service_template["Rules"]["PublicLoadBalancerNeedsSubnets"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "PublicLoadBalancer"}, "true"]}
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
        # An AWS-specific type is its own constraint: the console offers only real ids.
        if spec["Type"].startswith("List<AWS::"):
            continue
        assert constraint_keys & set(spec), f"{name} has no constraint"


def test_rules_reject_exactly_the_invalid_fargate_pairs(service_template):
    rules = {k: v for k, v in service_template["Rules"].items() if k.startswith("Fargate")}
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
        assert role["Properties"]["PermissionsBoundary"] == {"Ref": names.BOUNDARY_PARAMETER}
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


def test_subnets_reach_services_as_parameters_not_exports(cluster_template):
    """An export in use cannot change; parameters can, so subnets stay changeable."""
    for output in cluster_template["Outputs"].values():
        if "Export" in output:
            assert "Subnet" not in json.dumps(output["Value"])
    assert "Export" not in cluster_template["Outputs"][names.PRIVATE_SUBNETS]


def test_tasks_reach_each_callee_on_its_port_only(ingress_template, rich_topology):
    """The callee side of every edge: an outbound rule from the caller's group to the
    callee's group on the callee's port (the group has no allow-all outbound rule)."""
    identifier, collection, body = ingress_template["Resources"]["Fn::ForEach::CalleeEgress"]
    ((logical_id, rule),) = body.items()
    assert collection == {"Ref": names.CALLEES_PARAMETER}
    assert logical_id == "CalleeEgress&{%s}" % identifier
    props = rule["Properties"]
    assert rule["Type"] == "AWS::EC2::SecurityGroupEgress"
    assert "CidrIp" not in props and "DestinationPrefixListId" not in props
    assert props["GroupId"] == network_import("${ServiceName}")
    port = {"Fn::Select": [0, {"Fn::Split": [":", {"Ref": identifier}]}]}
    name = {"Fn::Select": [1, {"Fn::Split": [":", {"Ref": identifier}]}]}
    assert props["FromPort"] == props["ToPort"] == port
    assert props["DestinationSecurityGroupId"] == {"Fn::ImportValue": {"Fn::Sub": [
        "${AppName}-${Name}-network-TaskSecurityGroupId", {"Name": name}]}}
    callees = {s.name: params.ingress_parameters(rich_topology, s)[names.CALLEES_PARAMETER]
               for s in rich_topology.services}
    ports = {s.name: s.port for s in rich_topology.services}
    assert callees["web"] == ",".join(f"{ports[c]}:{c}" for c in ("orders", "catalog"))
    assert callees["catalog"] == names.NO_CALLEES


def test_items_of_callees_never_make_the_same_logical_id():
    """`&{}` keeps letters and digits; with the port first and names starting with a
    letter, "80:a1" and "8:0a1"-like pairs cannot meet (the second is not a name)."""
    from generator.topology import logical_id_part
    items = [f"{port}:{name}" for port in (1, 8, 80, 180, 8080, 65535)
             for name in ("a", "a1", "a-1x", "b80", "ab")]
    parts = [logical_id_part(item) for item in items]
    assert len(set(parts)) == len(parts)


def test_the_task_group_allows_https_and_nothing_else_by_default(default_topology):
    group = as_dict(network.build(default_topology))["Resources"]["TaskSecurityGroup"]
    assert group["Properties"]["SecurityGroupEgress"] == [{
        "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0",
        "Description": "HTTPS: ECR, CloudWatch Logs, Secrets Manager, SSM, ECS"}]


def test_the_stack_modules_never_import_render():
    """Issue 15, item 7: render builds every stack, bootstrap.yaml from the others'
    documents; no stack module reaches back to render (the import runs one way)."""
    import subprocess
    import sys

    code = ("import sys, generator.stacks.bootstrap, generator.stacks.cluster, "
            "generator.stacks.network, generator.stacks.ingress, generator.stacks.service; "
            "print('generator.render' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
