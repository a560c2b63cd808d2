"""Helpers for the IAM tests: reading templates and pulling a role's policies out of one.
(A module of its own, not conftest.py: test modules import these by name.)"""
from __future__ import annotations

from pathlib import Path

from cfnlint.decode import cfn_yaml

# Every template the deploy role deploys.
DEPLOYED_TEMPLATES = ("cluster.yaml", "service.yaml", "network.yaml", "ingress.yaml",
                      "pipeline.yaml")


def load_template(path: Path) -> dict:
    return cfn_yaml.load(str(path))


def inline_policies(resource: dict) -> list[dict]:
    """A role's inline policies; both branches of an Fn::If count (either may be taken)."""
    found = []
    for policy in resource.get("Properties", {}).get("Policies", []):
        if isinstance(policy, dict) and "Fn::If" in policy:
            found += [b for b in policy["Fn::If"][1:] if isinstance(b, dict) and "PolicyDocument" in b]
        elif isinstance(policy, dict):
            found.append(policy)
    return found


def attached_managed_policies(template: dict, role: str) -> dict[str, dict]:
    """ManagedPolicy resources of the template attached to the role (Roles: [!Ref role])."""
    return {
        name: resource for name, resource in template["Resources"].items()
        if isinstance(resource, dict) and resource["Type"] == "AWS::IAM::ManagedPolicy"
        and {"Ref": role} in resource["Properties"].get("Roles", [])
    }


def role_documents(template: dict, role: str) -> list[dict]:
    documents = [p["PolicyDocument"] for p in inline_policies(template["Resources"][role])]
    documents += [r["Properties"]["PolicyDocument"]
                  for r in attached_managed_policies(template, role).values()]
    return documents


def roles(template: dict) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items()
            if isinstance(r, dict) and r["Type"] == "AWS::IAM::Role"}


def resolved(node, values: dict[str, str]):
    """`node` with every Fn::Sub, Ref and Fn::GetAtt replaced by `values` (pseudo parameters,
    parameters, logical ids, "<logical id>.<attribute>"); KeyError names what is missing."""
    import re

    if isinstance(node, list):
        return [resolved(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
        return re.sub(r"\$\{([^}!]+)\}", lambda m: values[m.group(1)], node["Fn::Sub"])
    if set(node) == {"Ref"}:
        return values[node["Ref"]]
    if set(node) == {"Fn::GetAtt"}:
        return values[".".join(node["Fn::GetAtt"])]
    return {key: resolved(value, values) for key, value in node.items()}
