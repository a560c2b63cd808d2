"""Nothing in staging can call production (issue 16, item 7): each environment has its own
namespace, and every security-group edge the shared templates make stays inside the
environment whose AppName the stack is given."""
from __future__ import annotations

import json
import re

import yaml

from generator import params, render, topology


def _imports(node) -> list[str]:
    """Every Fn::ImportValue's name (its Fn::Sub text) in a template document."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::ImportValue":
                sub = value.get("Fn::Sub") if isinstance(value, dict) else value
                found.append(sub[0] if isinstance(sub, list) else sub)
            else:
                found += _imports(value)
    elif isinstance(node, list):
        for item in node:
            found += _imports(item)
    return found


def test_every_edge_imports_a_group_of_the_same_environment(two_environments):
    _, documents = render.render_with_documents(two_environments)
    imports = _imports(documents["ingress.yaml"])
    assert imports  # the callers' and callees' groups
    # Each is named after the stack's own AppName: <app>-<env>-<service>-network-...
    assert all(name.startswith("${AppName}-") for name in imports), imports
    for deployment in two_environments.deployments:
        own = {s.name for s in deployment.services}
        for service in deployment.services:
            values = params.ingress_parameters(deployment, service)
            assert values["AppName"] == deployment.app
            callers = set(values["Callers"].split(",")) - {"none"}
            assert callers <= own


def test_environments_never_share_a_namespace_or_a_cluster(two_environments):
    staging, production = two_environments.deployments
    assert staging.namespace != production.namespace
    files = render.render(two_environments)
    for name, content in files.items():
        if name.startswith("params/production/"):
            values = json.loads(content)["Parameters"]
            assert values["ClusterStackName"] == "shop-production-cluster"
            assert "staging" not in values["PeerUrls"]


def test_the_readme_walk_through_is_a_valid_topology(repo_root):
    """The README's "From one environment to two" section, added to the default topology."""
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    section = readme.split("### From one environment to two", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)
    text = (repo_root / "topology.yaml").read_text() + "\n" + \
        "\n".join(line[3:] if line.startswith("   ") else line for line in block.splitlines())
    loaded = topology.parse(text, "README.md")
    assert [e.name for e in loaded.environments] == ["staging", "production"]
    assert loaded.in_environment("production").service("server").desired_count == 3
    assert yaml.safe_load(block)["environments"]["production"]["approval"] is True
