"""Runs the conformance matrix (tests/conformance/requirements.py): each documented AWS
requirement against the templates rendered in-process from the default topology and from
the workloads topology (public with HTTPS, secrets, Service Connect TLS, images), or
against the deployer's code where the requirement is about the API calls it makes.

The first cut's checks (Service Connect, Cloud Map, task definition, secrets, ALB, the
transform) live here with the runner; the later ones in two modules by stack, so no module
passes ~400 lines: checks_service.py (ECS service and task definition, autoscaling, HTTPS,
Service Connect TLS) and checks_delivery.py (CodePipeline, connections, CodeBuild, S3, ECR,
the permissions boundary). CHECKS gathers all three."""
from __future__ import annotations

import argparse
import json
import random
import re

import pytest

from generator import topology as topology_module
from generator.ops import cli as ops_cli
from tests.conformance import checks_delivery, checks_service
from tests.conformance import requirements as matrix
from tests.conformance.kit import REPO, TOPOLOGIES, branches, documents, resources

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


def _checks_of(namespace: dict, module_name: str) -> dict:
    return {name: value for name, value in namespace.items()
            if callable(value) and not name.startswith(("_", "test_"))
            and getattr(value, "__module__", None) == module_name}


CHECKS = {**_checks_of(vars(checks_delivery), checks_delivery.__name__),
          **_checks_of(vars(checks_service), checks_service.__name__),
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
