"""Helpers the conformance checks share (tests/conformance/test_conformance.py and
checks_delivery.py): the templates rendered in-process for each topology, and small readers
of resources, conditions and IAM policy documents."""
from __future__ import annotations

import fnmatch
from functools import lru_cache
from pathlib import Path

from generator import render
from generator import topology as topology_module
from tests.workloads.workloads_kit import WORKLOADS_TOPOLOGY

REPO = Path(__file__).resolve().parent.parent.parent
TOPOLOGIES = {
    "default": (REPO / "topology.yaml").read_text(),
    "workloads": WORKLOADS_TOPOLOGY,
}


def parsed(which: str):
    return topology_module.parse(TOPOLOGIES[which], f"{which}.yaml")


@lru_cache(maxsize=None)
def documents(which: str) -> dict[str, dict]:
    return render.render_with_documents(parsed(which))[1]


def branches(value):
    """Both branches of an Fn::If (recursively), else the value itself."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        for branch in value["Fn::If"][1:]:
            yield from branches(branch)
    else:
        yield value


def resources(document: dict, type_: str):
    for logical_id, resource in document.get("Resources", {}).items():
        if isinstance(resource, dict) and resource.get("Type") == type_:
            yield logical_id, resource


def all_resources(which: str, type_: str):
    """(template name, logical id, resource) of every resource of the type, all templates."""
    for name, document in documents(which).items():
        for logical_id, resource in resources(document, type_):
            yield name, logical_id, resource


def listed(value) -> list:
    return value if isinstance(value, list) else [value]


def statements(policy_document) -> list[dict]:
    """The statements of a policy document, both branches of any Fn::If taken."""
    found = []
    for document in branches(policy_document):
        if not isinstance(document, dict):
            continue
        for statement in listed(document.get("Statement", [])):
            found.extend(s for s in branches(statement)
                         if isinstance(s, dict) and "Effect" in s)  # not AWS::NoValue
    return found


def role_statements(role: dict) -> list[dict]:
    """The statements of a role's inline policies."""
    found = []
    for policy in listed(role["Properties"].get("Policies", [])):
        for branch in branches(policy):
            if isinstance(branch, dict) and "PolicyDocument" in branch:  # not AWS::NoValue
                found.extend(statements(branch["PolicyDocument"]))
    return found


def trusted_services(role: dict) -> set[str]:
    services = set()
    for statement in statements(role["Properties"]["AssumeRolePolicyDocument"]):
        if statement.get("Effect") == "Allow" and "sts:AssumeRole" in listed(statement["Action"]):
            services.update(listed(statement.get("Principal", {}).get("Service", [])))
    return services


def allows(patterns, action: str) -> bool:
    """IAM action matching: case-insensitive, * and ? wildcards."""
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in listed(patterns))


def ref_target(value) -> str | None:
    """The logical id a Ref or a GetAtt (any attribute) points at."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return target[0] if isinstance(target, list) else target.split(".")[0]
    return None


def boundary_statements(which: str) -> list[dict]:
    """The Allow statements of the bootstrap stack's permissions boundary."""
    policies = dict(resources(documents(which)["bootstrap.yaml"], "AWS::IAM::ManagedPolicy"))
    document = policies["PermissionsBoundary"]["Properties"]["PolicyDocument"]
    return [s for s in statements(document) if s["Effect"] == "Allow"]
