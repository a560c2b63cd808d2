"""Fixtures for the IAM tests: every template generated into tmp_path (the committed
topology and one with a public service), read back as CloudFormation sees it, and helpers
that pull a role's policies out of a template."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

from generator import render, topology as topology_module
from recording import boto3_calls  # noqa: F401  (fixture)

PUBLIC_TOPOLOGY = """\
app: shop
namespace: shop.local
services:
  web:
    port: 3000
    public: true
    calls: [orders]
  orders:
    port: 8080
"""

# Every template the deploy role deploys; network.yaml arrives with the lead's restructure.
DEPLOYED_TEMPLATES = ("cluster.yaml", "service.yaml", "network.yaml", "pipeline.yaml")


def load_template(path: Path) -> dict:
    return cfn_yaml.load(str(path))


def _generate(out: Path, topology: topology_module.Topology) -> dict[str, dict]:
    render.write(out, render.render(topology))
    return {path.name: load_template(path) for path in sorted(out.glob("*.yaml"))}


@pytest.fixture(scope="session")
def public_topology() -> topology_module.Topology:
    return topology_module.parse(textwrap.dedent(PUBLIC_TOPOLOGY), "public-topology.yaml")


@pytest.fixture(scope="session")
def generated(tmp_path_factory, default_topology, public_topology):
    """{label: (topology, {template file name: template dict})} for both topologies."""
    return {
        label: (topology, _generate(tmp_path_factory.mktemp(label), topology))
        for label, topology in (("default", default_topology), ("public", public_topology))
    }


@pytest.fixture(scope="session")
def default_templates(generated) -> dict[str, dict]:
    return generated["default"][1]


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
