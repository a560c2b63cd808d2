"""Runs the conformance matrix (tests/conformance/requirements.py): each documented AWS
requirement against the templates rendered in-process from the default topology and from
the workloads topology (public with HTTPS, secrets, Service Connect TLS, images), or
against the deployer's code where the requirement is about the API calls it makes.

The checks of the service and cluster stacks (ECS, Service Connect and its TLS, Cloud Map,
ALB and HTTPS, autoscaling, secrets, the transform) live here; those of the delivery stacks
(bootstrap and pipeline: CodePipeline, connections, CodeBuild, S3, ECR, the permissions
boundary) in checks_delivery.py, so neither module passes ~400 lines."""
from __future__ import annotations

import argparse
import json
import random
import re

import pytest

from generator import topology as topology_module
from generator.ops import cli as ops_cli
from tests.conformance import checks_delivery
from tests.conformance import requirements as matrix
from tests.conformance.kit import (REPO, TOPOLOGIES, all_resources, allows,
                                   boundary_statements, branches, documents, listed,
                                   ref_target, resources, statements, trusted_services)

_branches = branches
_resources = resources


def _service_connect_services(document: dict):
    for _, service in _resources(document, "AWS::ECS::Service"):
        for config in _branches(service["Properties"].get("ServiceConnectConfiguration")):
            if isinstance(config, dict):
                for entry in config.get("Services", []):
                    yield from (e for e in _branches(entry) if isinstance(e, dict))


def _containers(document: dict):
    for _, task in _resources(document, "AWS::ECS::TaskDefinition"):
        for container in task["Properties"]["ContainerDefinitions"]:
            yield task, container


# --- the checks, one per requirement -------------------------------------------------

def port_name_matches_a_port_mapping(which: str) -> None:
    document = documents(which)["service.yaml"]
    names = {mapping.get("Name") for _, container in _containers(document)
             for mapping in container.get("PortMappings", [])}
    entries = list(_service_connect_services(document))
    assert entries, "no Service Connect service in service.yaml"
    for entry in entries:
        assert entry["PortName"] in names, (entry["PortName"], names)


def at_most_one_client_alias(which: str) -> None:
    for entry in _service_connect_services(documents(which)["service.yaml"]):
        assert len(entry.get("ClientAliases", [])) <= 1, entry


def a_client_alias_with_a_port(which: str) -> None:
    for entry in _service_connect_services(documents(which)["service.yaml"]):
        aliases = entry.get("ClientAliases", [])
        assert aliases and all("Port" in alias for alias in aliases), entry


def discovery_names_are_unique(which: str) -> None:
    text = TOPOLOGIES[which]
    topology = topology_module.parse(text, f"{which}.yaml")
    names = [service.discovery_name for service in topology.services.values()] \
        if isinstance(topology.services, dict) else \
        [service.discovery_name for service in topology.services]
    assert len(names) == len(set(names))
    # The lesson of the CDK app: two services both called `server` must be refused.
    clash = ("app: demo\nnamespace: my.demo\nservices:\n"
             "  a: {port: 8080, discovery_name: server}\n"
             "  b: {port: 8080, discovery_name: server}\n")
    with pytest.raises(topology_module.TopologyError, match="discovery_name"):
        topology_module.parse(clash, "clash.yaml")


_DOCUMENTED_DISCOVERY_NAME = re.compile(r"^[a-z0-9_][a-z0-9_-]{0,63}$")


def discovery_name_pattern_is_within_the_documented_one(which: str) -> None:
    parameter = documents(which)["service.yaml"]["Parameters"]["DiscoveryName"]
    assert int(parameter["MaxLength"]) <= 64
    ours = re.compile(parameter["AllowedPattern"])
    rng = random.Random(14)
    alphabet = "abcz09-_A."
    accepted = 0
    for _ in range(20000):
        candidate = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 70)))
        if ours.match(candidate) and len(candidate) <= int(parameter["MaxLength"]):
            accepted += 1
            assert _DOCUMENTED_DISCOVERY_NAME.match(candidate), candidate
    assert accepted > 0  # the sample reached the pattern at all


def foreach_templates_declare_the_transform_literally(which: str) -> None:
    using = 0
    for name, document in documents(which).items():
        if any(key.startswith("Fn::ForEach::") for key in document.get("Resources", {})):
            using += 1
            transform = document.get("Transform")
            listed = transform if isinstance(transform, list) else [transform]
            assert "AWS::LanguageExtensions" in listed, name
    # No template without Fn::ForEach carries the transform for nothing either.
    for name, document in documents(which).items():
        if "Transform" in document:
            assert any(key.startswith("Fn::ForEach::")
                       for key in document.get("Resources", {})), name


_PREVIOUS_TEMPLATE_CALL = re.compile(r"UsePreviousTemplate\s*=|[\"']UsePreviousTemplate[\"']\s*:")


def the_deployer_never_uses_the_previous_template(which: str) -> None:
    sources = sorted((REPO / "generator" / "ops").glob("*.py"))
    assert sources
    for source in sources:
        assert not _PREVIOUS_TEMPLATE_CALL.search(source.read_text()), source.name
    # Negative control: the pattern finds the call shape boto3 would need.
    assert _PREVIOUS_TEMPLATE_CALL.search("cfn.create_change_set(UsePreviousTemplate=True)")


def awslogs_tasks_have_an_execution_role(which: str) -> None:
    seen = 0
    for name, document in documents(which).items():
        for task, container in _containers(document):
            drivers = {c.get("LogDriver") for c in _branches(container.get("LogConfiguration"))
                       if isinstance(c, dict)}
            if "awslogs" in drivers:
                seen += 1
                assert task["Properties"].get("ExecutionRoleArn"), name
    assert seen


def secrets_are_readable_by_the_execution_role(which: str) -> None:
    document = documents(which)["service.yaml"]
    secrets = json.dumps([container.get("Secrets") for _, container in _containers(document)])
    role = json.dumps(dict(_resources(document, "AWS::IAM::Role"))["ExecutionRole"])
    kinds = {"SecretsManager": "secretsmanager:GetSecretValue",
             "SsmParameter": "ssm:GetParameters"}
    if "ValueFrom" not in secrets:
        # No secret in the template: the execution role reads none (least privilege).
        assert not any(action in role for action in kinds.values())
        return
    # Every secret slot is readable: both kinds of ARN get their action.
    for action in kinds.values():
        assert action in role, action


def public_subnets_flag_needs_two(which: str) -> None:
    parse = ops_cli._subnet_ids(minimum=2)
    with pytest.raises(argparse.ArgumentTypeError, match="at least 2"):
        parse("subnet-0abc1234")
    assert parse("subnet-0abc1234,subnet-0def5678") == "subnet-0abc1234,subnet-0def5678"
    # The template cannot default the load balancer to fewer: no Default to fall back on.
    parameter = documents(which)["service.yaml"]["Parameters"]["LoadBalancerSubnets"]
    assert "Default" not in parameter


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
        targets = dict(_resources(document, "AWS::ApplicationAutoScaling::ScalableTarget"))
        for logical_id, policy in _resources(document,
                                             "AWS::ApplicationAutoScaling::ScalingPolicy"):
            assert ref_target(policy["Properties"]["ScalingTargetId"]) in targets, logical_id


def a_scaling_service_leaves_the_count_to_autoscaling(which: str) -> None:
    document = documents(which)["service.yaml"]
    service = dict(_resources(document, "AWS::ECS::Service"))["Service"]
    condition, scaling, fixed = service["Properties"]["DesiredCount"]["Fn::If"]
    assert scaling == {"Ref": "AWS::NoValue"} and fixed == {"Ref": "DesiredCount"}
    assert document["Conditions"][condition] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "MinCapacity"}, {"Ref": "MaxCapacity"}]}]}


# --- HTTPS on the load balancer -------------------------------------------------------

def _listeners(which: str):
    document = documents(which)["service.yaml"]
    return document, dict(_resources(document, "AWS::ElasticLoadBalancingV2::Listener"))


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
            for branch in _branches(action):
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
    role = dict(_resources(cluster, "AWS::IAM::Role"))["ServiceConnectTlsRole"]
    assert trusted_services(role) == {"ecs.amazonaws.com"}
    managed = json.dumps(role["Properties"]["ManagedPolicyArns"])
    assert TLS_MANAGED_POLICY in managed


def tls_services_pass_the_infrastructure_role(which: str) -> None:
    document = documents(which)["service.yaml"]
    for entry in _service_connect_services(document):
        for tls in _branches(entry.get("Tls")):
            if isinstance(tls, dict) and "IssuerCertificateAuthority" in tls:
                assert "RoleArn" in tls
    rule = document["Rules"]["ServiceConnectTlsNeedsTheRole"]
    assert "ServiceConnectTlsCaArn" in json.dumps(rule["RuleCondition"])
    assert "ServiceConnectTlsRoleArn" in json.dumps(rule["Assertions"])
    # The deploy role may hand an app role to ECS (iam:PassRole to ecs.amazonaws.com).
    bootstrap = documents(which)["bootstrap.yaml"]
    passed = [s for _, _, p in all_resources(which, "AWS::IAM::ManagedPolicy")
              for s in statements(p["Properties"]["PolicyDocument"])
              if "iam:PassRole" in listed(s["Action"]) and s["Effect"] == "Allow"]
    assert bootstrap and any("ecs.amazonaws.com" in json.dumps(s.get("Condition")) for s in passed)


# The actions of the managed policy (its page, aws-managed-policy/latest/reference/
# AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity.html).
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


def _checks_of(namespace: dict, module_name: str) -> dict:
    return {name: value for name, value in namespace.items()
            if callable(value) and not name.startswith(("_", "test_"))
            and getattr(value, "__module__", None) == module_name}


CHECKS = {**_checks_of(vars(checks_delivery), checks_delivery.__name__),
          **_checks_of(globals(), __name__)}


def _params():
    for requirement in matrix.REQUIREMENTS:
        for which in TOPOLOGIES:
            marks = ([pytest.mark.xfail(strict=True, reason=requirement.known_violation)]
                     if requirement.known_violation else [])
            yield pytest.param(requirement, which, marks=marks,
                               id=f"{requirement.id}-{which}")


@pytest.mark.parametrize("requirement, which", list(_params()))
def test_requirement(requirement, which):
    CHECKS[requirement.check](which)


def test_every_record_cites_a_page_quotes_it_and_names_a_check():
    ids = [r.id for r in matrix.REQUIREMENTS]
    assert len(ids) == len(set(ids))
    for requirement in matrix.REQUIREMENTS:
        # docs.amazonaws.cn is AWS's own mirror of the same guides (China Regions).
        assert requirement.url.startswith(("https://docs.aws.amazon.com/",
                                           "https://docs.amazonaws.cn/")), requirement.id
        assert len(requirement.quote) > 20, requirement.id
        assert requirement.check in CHECKS, requirement.id
        assert requirement.feature in matrix.FEATURES, requirement.id


def test_every_check_is_used():
    used = {r.check for r in matrix.REQUIREMENTS}
    assert set(CHECKS) - used == set()


def test_the_features_without_a_record_are_declared():
    covered = {r.feature for r in matrix.REQUIREMENTS}
    assert set(matrix.MISSING_FEATURES) == set(matrix.FEATURES) - covered


def test_docs_table_is_current():
    from tests.conformance import table
    assert (REPO / "docs" / "conformance.md").read_text() == table.markdown()
