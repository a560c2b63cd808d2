"""Conformance checks of the service and cluster stacks added after the first cut: ECS
service and task definition, Application Auto Scaling, HTTPS on the load balancer and
Service Connect TLS. A module of their own so test_conformance.py (the runner and the first
cut's checks) stays under ~400 lines; test_conformance.py runs them by the names the records
in requirements.py give."""
from __future__ import annotations

import json

import pytest

from generator import params
from generator import topology as topology_module
from tests.conformance.kit import (all_resources, allows, boundary_statements, branches,
                                   documents, listed, parsed, ref_target, resources,
                                   statements, trusted_services)


def _containers(document: dict):
    for _, task in resources(document, "AWS::ECS::TaskDefinition"):
        for container in task["Properties"]["ContainerDefinitions"]:
            yield task, container


def _service_connect_services(document: dict):
    for _, service in resources(document, "AWS::ECS::Service"):
        for config in branches(service["Properties"].get("ServiceConnectConfiguration")):
            if isinstance(config, dict):
                for entry in config.get("Services", []):
                    yield from (e for e in branches(entry) if isinstance(e, dict))


# --- ECS service and task definition -------------------------------------------------

def _task_definitions(which: str) -> dict:
    return {(name, logical_id): task
            for name, logical_id, task in all_resources(which, "AWS::ECS::TaskDefinition")}


def awsvpc_services_have_a_network_configuration(which: str) -> None:
    tasks = _task_definitions(which)
    seen = 0
    for name, _, service in all_resources(which, "AWS::ECS::Service"):
        task = tasks[(name, ref_target(service["Properties"]["TaskDefinition"]))]
        network = service["Properties"].get("NetworkConfiguration")
        if task["Properties"].get("NetworkMode") == "awsvpc":
            seen += 1
            assert network and "AwsvpcConfiguration" in network, name
            vpc = network["AwsvpcConfiguration"]
            assert vpc.get("Subnets") and vpc.get("SecurityGroups"), name
        else:
            assert network is None, name  # "it isn't supported for other network modes"
    assert seen


def fargate_tasks_use_awsvpc(which: str) -> None:
    tasks = list(all_resources(which, "AWS::ECS::TaskDefinition"))
    assert tasks
    for name, _, task in tasks:
        if "FARGATE" in task["Properties"].get("RequiresCompatibilities", []):
            assert task["Properties"].get("NetworkMode") == "awsvpc", name
    for name, _, service in all_resources(which, "AWS::ECS::Service"):
        assert service["Properties"].get("LaunchType") == "FARGATE", name


# The table of task-cpu-memory-error.html as the RegisterTaskDefinition memory parameter
# lists it (sdk-for-kotlin ... -register-task-definition-request/memory.html): cpu -> MiB.
FARGATE_MEMORY = {
    256: {512, 1024, 2048},
    512: {1024, 2048, 3072, 4096},
    1024: set(range(2048, 8192 + 1, 1024)),
    2048: set(range(4096, 16384 + 1, 1024)),
    4096: set(range(8192, 30720 + 1, 1024)),
    8192: set(range(16384, 61440 + 1, 4096)),
    16384: set(range(32768, 122880 + 1, 8192)),
}


def fargate_cpu_memory_pairs_are_the_documented_ones(which: str) -> None:
    document = documents(which)["service.yaml"]
    cpus = {int(c) for c in document["Parameters"]["Cpu"]["AllowedValues"]}
    memories = {int(m) for m in document["Parameters"]["Memory"]["AllowedValues"]}
    assert cpus <= set(FARGATE_MEMORY)
    assert set().union(*(FARGATE_MEMORY[c] for c in cpus)) == memories
    rules = {json.dumps(rule["RuleCondition"]): rule for rule in document["Rules"].values()}
    for cpu in cpus:
        rule = rules[json.dumps({"Fn::Equals": [{"Ref": "Cpu"}, str(cpu)]})]
        allowed = {int(m) for m in rule["Assertions"][0]["Assert"]["Fn::Contains"][0]}
        assert allowed == FARGATE_MEMORY[cpu], cpu


def health_checks_start_with_cmd_or_cmd_shell(which: str) -> None:
    topology = parsed(which)
    # What the deployer passes as HealthCheckCommand (empty: no container health check).
    commands = {service.name: params.parameters(topology, service)["HealthCheckCommand"]
                for service in topology.services}
    assert any(commands.values())
    for name, command in commands.items():
        assert not command or command.split(",")[0] in ("CMD", "CMD-SHELL"), name
    with pytest.raises(topology_module.TopologyError, match="CMD or CMD-SHELL"):
        topology_module.parse("app: demo\nnamespace: my.demo\nservices:\n"
                              "  a: {port: 8080, health_check_command: [curl, -f, x]}\n",
                              "bad.yaml")


# The ranges the container health check's page gives each setting, in seconds (retries: times).
HEALTH_CHECK_RANGES = {"Interval": (5, 300), "Timeout": (2, 60), "Retries": (1, 10),
                       "StartPeriod": (0, 300)}


def health_check_settings_are_in_range(which: str) -> None:
    checks = [check for _, container in _containers(documents(which)["service.yaml"])
              for check in branches(container.get("HealthCheck"))
              if isinstance(check, dict) and "Command" in check]
    assert checks
    for check in checks:
        for key, (low, high) in HEALTH_CHECK_RANGES.items():
            assert low <= int(check[key]) <= high, (key, check[key])
        assert int(check["Timeout"]) < int(check["Interval"])


def awsvpc_target_groups_target_ips(which: str) -> None:
    checked = 0
    for name, document in documents(which).items():
        groups = dict(resources(document, "AWS::ElasticLoadBalancingV2::TargetGroup"))
        for _, service in resources(document, "AWS::ECS::Service"):
            for attached in branches(service["Properties"].get("LoadBalancers")):
                for balancer in attached if isinstance(attached, list) else []:
                    checked += 1
                    group = groups[ref_target(balancer["TargetGroupArn"])]
                    assert group["Properties"].get("TargetType") == "ip", name
    assert checked


def access_logs_come_with_a_log_configuration(which: str) -> None:
    configs = [c for _, service in resources(documents(which)["service.yaml"], "AWS::ECS::Service")
               for c in branches(service["Properties"].get("ServiceConnectConfiguration"))
               if isinstance(c, dict)]
    assert any("AccessLogConfiguration" in c for c in configs)
    for config in configs:
        if "AccessLogConfiguration" in config:
            assert config.get("LogConfiguration", {}).get("LogDriver"), config


def _timeouts(which: str):
    entries = list(_service_connect_services(documents(which)["service.yaml"]))
    assert entries
    return [entry["Timeout"] for entry in entries if "Timeout" in entry]


def idle_timeout_is_not_below_the_per_request_timeout(which: str) -> None:
    parameters = documents(which)["service.yaml"]["Parameters"]
    timeouts = _timeouts(which)
    assert timeouts
    for timeout in timeouts:
        assert timeout == {"IdleTimeoutSeconds": {"Ref": "IdleTimeoutSeconds"},
                           "PerRequestTimeoutSeconds": {"Ref": "PerRequestTimeoutSeconds"}}
    assert (int(parameters["IdleTimeoutSeconds"]["Default"])
            >= int(parameters["PerRequestTimeoutSeconds"]["Default"]))
    topology = parsed(which)
    for service in topology.services:  # what the deployer passes
        given = params.parameters(topology, service)
        assert int(given["IdleTimeoutSeconds"]) >= int(given["PerRequestTimeoutSeconds"])


def per_request_timeouts_only_on_non_tcp_ports(which: str) -> None:
    document = documents(which)["service.yaml"]
    protocols = {mapping.get("Name"): mapping.get("AppProtocol")
                 for _, container in _containers(document)
                 for mapping in container.get("PortMappings", [])}
    for entry in _service_connect_services(document):
        if "PerRequestTimeoutSeconds" in entry.get("Timeout", {}):
            assert protocols.get(entry["PortName"]) not in (None, "tcp"), entry["PortName"]


# --- Application Auto Scaling ---------------------------------------------------------

def _scalable_targets(which: str):
    found = list(all_resources(which, "AWS::ApplicationAutoScaling::ScalableTarget"))
    assert found
    return found


def scalable_target_names_the_cluster_and_the_service(which: str) -> None:
    cluster = documents(which)["cluster.yaml"]
    # The ClusterName export is the cluster's Ref, which is its name (AWS::ECS::Cluster).
    assert ref_target(cluster["Outputs"]["ClusterName"]["Value"]) == "Cluster"
    for name, _, target in _scalable_targets(which):
        properties = target["Properties"]
        assert properties["ServiceNamespace"] == "ecs"
        assert properties["ScalableDimension"] == "ecs:service:DesiredCount"
        separator, (kind, cluster_name, service) = properties["ResourceId"]["Fn::Join"]
        assert separator == "/" and kind == "service", name
        assert cluster_name == {"Fn::ImportValue": {"Fn::Sub": "${ClusterStackName}-ClusterName"}}
        assert service == {"Fn::GetAtt": ["Service", "Name"]}, name


def scalable_targets_have_a_minimum_and_a_maximum(which: str) -> None:
    for name, _, target in _scalable_targets(which):
        assert {"MinCapacity", "MaxCapacity"} <= set(target["Properties"]), name
    # The range is a range: the topology refuses a minimum above the maximum.
    with pytest.raises(topology_module.TopologyError, match="min"):
        topology_module.parse("app: demo\nnamespace: my.demo\nservices:\n"
                              "  a: {port: 8080, scaling: {min: 3, max: 2}}\n", "bad.yaml")


def scaling_policies_name_a_scalable_target(which: str) -> None:
    for name, document in documents(which).items():
        targets = dict(resources(document, "AWS::ApplicationAutoScaling::ScalableTarget"))
        for logical_id, policy in resources(document,
                                             "AWS::ApplicationAutoScaling::ScalingPolicy"):
            assert ref_target(policy["Properties"]["ScalingTargetId"]) in targets, logical_id


def a_scaling_service_leaves_the_count_to_autoscaling(which: str) -> None:
    document = documents(which)["service.yaml"]
    service = dict(resources(document, "AWS::ECS::Service"))["Service"]
    count = service["Properties"].get("DesiredCount")
    assert isinstance(count, dict) and "Fn::If" in count, count
    condition, scaling, fixed = count["Fn::If"]
    assert scaling == {"Ref": "AWS::NoValue"} and fixed == {"Ref": "DesiredCount"}
    assert document["Conditions"][condition] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "MinCapacity"}, {"Ref": "MaxCapacity"}]}]}


def _mentions(value, logical_id: str) -> bool:
    text = json.dumps(value)
    return (f'"Ref": "{logical_id}"' in text or f'"Fn::GetAtt": ["{logical_id}"' in text
            or f"${{{logical_id}." in text)


def scalable_targets_wait_for_their_service(which: str) -> None:
    for name, document in documents(which).items():
        services = dict(resources(document, "AWS::ECS::Service"))
        for logical_id, target in resources(document,
                                            "AWS::ApplicationAutoScaling::ScalableTarget"):
            depends = listed(target.get("DependsOn", []))
            assert any(s in depends or _mentions(target["Properties"], s)
                       for s in services), (name, logical_id)


def autoscaling_uses_its_service_linked_role(which: str) -> None:
    for _, logical_id, target in _scalable_targets(which):
        assert "RoleARN" not in target["Properties"], logical_id
    # CloudFormation, as the deploy role, registers the first target: it may create the role.
    created = [s for _, _, p in all_resources(which, "AWS::IAM::ManagedPolicy")
               for s in statements(p["Properties"]["PolicyDocument"])
               if s["Effect"] == "Allow" and "iam:CreateServiceLinkedRole" in listed(s["Action"])]
    assert any("ecs.application-autoscaling.amazonaws.com" in json.dumps(s.get("Condition"))
               and "aws-service-role/ecs.application-autoscaling.amazonaws.com/"
               in json.dumps(s["Resource"]) for s in created)


# --- HTTPS on the load balancer -------------------------------------------------------

def _listeners(which: str):
    document = documents(which)["service.yaml"]
    return document, dict(resources(document, "AWS::ElasticLoadBalancingV2::Listener"))


def https_listeners_have_a_certificate(which: str) -> None:
    document, listeners = _listeners(which)
    https = {k: v for k, v in listeners.items() if v["Properties"]["Protocol"] == "HTTPS"}
    assert https
    for logical_id, listener in https.items():
        certificates = listener["Properties"].get("Certificates", [])
        assert any(c.get("CertificateArn") for c in certificates), logical_id
        # The listener exists only when a certificate is given.
        condition = json.dumps(document["Conditions"][listener["Condition"]])
        assert '{"Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]}' in condition


def https_listeners_have_a_security_policy(which: str) -> None:
    _, listeners = _listeners(which)
    for logical_id, listener in listeners.items():
        if listener["Properties"]["Protocol"] == "HTTPS":
            assert listener["Properties"].get("SslPolicy", "").startswith(
                "ELBSecurityPolicy-"), logical_id


def a_target_group_serves_one_load_balancer(which: str) -> None:
    _, listeners = _listeners(which)
    balancers: dict[str, set] = {}
    for listener in listeners.values():
        for action in listener["Properties"]["DefaultActions"]:
            for branch in branches(action):
                if isinstance(branch, dict) and "TargetGroupArn" in branch:
                    balancers.setdefault(ref_target(branch["TargetGroupArn"]), set()).add(
                        ref_target(listener["Properties"]["LoadBalancerArn"]))
    assert balancers
    assert all(len(found) == 1 for found in balancers.values()), balancers


# --- Service Connect TLS ----------------------------------------------------------------

TLS_MANAGED_POLICY = ("policy/service-role/"
                      "AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity")


def tls_role_is_an_ecs_infrastructure_role(which: str) -> None:
    cluster = documents(which)["cluster.yaml"]
    role = dict(resources(cluster, "AWS::IAM::Role"))["ServiceConnectTlsRole"]
    assert trusted_services(role) == {"ecs.amazonaws.com"}
    managed = json.dumps(role["Properties"]["ManagedPolicyArns"])
    assert TLS_MANAGED_POLICY in managed


def tls_services_pass_the_infrastructure_role(which: str) -> None:
    document = documents(which)["service.yaml"]
    for entry in _service_connect_services(document):
        for tls in branches(entry.get("Tls")):
            if isinstance(tls, dict) and "IssuerCertificateAuthority" in tls:
                assert "RoleArn" in tls
    rule = document["Rules"].get("ServiceConnectTlsNeedsTheRole")
    assert rule, "no rule refuses a CA without the role"
    assert "ServiceConnectTlsCaArn" in json.dumps(rule["RuleCondition"])
    assert "ServiceConnectTlsRoleArn" in json.dumps(rule["Assertions"])
    # The deploy role may hand an app role to ECS (iam:PassRole to ecs.amazonaws.com).
    bootstrap = documents(which)["bootstrap.yaml"]
    passed = [s for _, _, p in all_resources(which, "AWS::IAM::ManagedPolicy")
              for s in statements(p["Properties"]["PolicyDocument"])
              if "iam:PassRole" in listed(s["Action"]) and s["Effect"] == "Allow"]
    assert bootstrap and any("ecs.amazonaws.com" in json.dumps(s.get("Condition")) for s in passed)


# The actions of the managed policy. Its page (aws-managed-policy/latest/reference/
# AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity.html, read in its
# zh_cn copy) shows secretsmanager:CreateSecret and TagResource on
# "arn:aws:secretsmanager:*:*:secret:ecs-sc!*"; the whole list is the policy's document as
# github.com/badele/aws-policies-analyzer-docs lists it.
TLS_POLICY_ACTIONS = (
    "acm-pca:DescribeCertificateAuthority", "acm-pca:GetCertificate",
    "acm-pca:GetCertificateAuthorityCertificate", "acm-pca:IssueCertificate",
    "secretsmanager:CreateSecret", "secretsmanager:DeleteSecret",
    "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue", "secretsmanager:RotateSecret",
    "secretsmanager:TagResource", "secretsmanager:UpdateSecret",
    "secretsmanager:UpdateSecretVersionStage",
)


def the_boundary_lets_the_tls_role_work(which: str) -> None:
    boundary = boundary_statements(which)
    for action in TLS_POLICY_ACTIONS:
        granting = [s for s in boundary if allows(s["Action"], action)]
        assert granting, action
        if action.startswith("secretsmanager:"):
            # The policy's secrets are arn:aws:secretsmanager:*:*:secret:ecs-sc!*
            assert any("secret:ecs-sc!*" in json.dumps(s["Resource"]) or
                       "*" in listed(s["Resource"]) for s in granting), action


def tls_behind_a_load_balancer_uses_a_tls13_policy(which: str) -> None:
    document, listeners = _listeners(which)
    https = [v for v in listeners.values() if v["Properties"]["Protocol"] == "HTTPS"]
    assert https
    for listener in https:
        assert listener["Properties"]["SslPolicy"].startswith("ELBSecurityPolicy-TLS13-")

