"""samconfig.toml for SAM CLI users: one config environment per stack in deploy order, with
the pipeline's parameters, capabilities and tags; the templates pass `sam validate --lint`;
SAM CLI's own parser reads the same values as the params files."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

from pathlib import Path

import pytest

from workloads_kit import LEDGER, NGINX, REPO, params, run_cli
from generator import plan as plan_module
from generator import topology as topology_module

tomllib = pytest.importorskip("tomllib", reason="tomllib is in Python 3.11 and later")


def sam_executable() -> str | None:
    local = REPO / ".venv-sam" / "bin" / "sam"
    return str(local) if local.exists() else shutil.which("sam")


SAM = sam_executable()
needs_sam = pytest.mark.skipif(
    SAM is None, reason="AWS SAM CLI is not installed: `make sam` installs it into .venv-sam "
                        "(from PyPI; it pins boto3 below this project's, hence its own venv)")
SAM_ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1"}


def load_config(root: Path) -> dict:
    return tomllib.loads((root / "samconfig.toml").read_text(encoding="utf-8"))


def sam_pairs(items: list[str]) -> dict[str, str]:
    """Key="Value" items, unquoted as SAM CLI unquotes them (backslash escapes)."""
    pairs = {}
    for item in items:
        key, value = item.split("=", 1)
        assert value.startswith('"') and value.endswith('"'), item
        pairs[key] = re.sub(r"\\(.)", r"\1", value[1:-1])
    return pairs


def test_one_environment_per_stack_in_the_deployers_order(generated):
    topology = topology_module.load(generated / "topology.yaml")
    config = load_config(generated)
    order = plan_module.build(topology).order
    expected = (["shop-cluster"] + [f"shop-{name}-network" for name in order]
                + [f"shop-{name}-ingress" for name in order]
                + [f"shop-{name}" for name in order])
    assert [key for key in config if key != "version"] == expected
    assert config["version"] == 0.1
    # Callees before callers: web (calls orders, search, ledger) after each of them.
    services = [key for key in expected
                if not key.endswith(("-network", "-ingress", "-cluster"))]
    for callee in ("shop-orders", "shop-search", "shop-ledger"):
        assert services.index(callee) < services.index("shop-web")


def test_each_environment_has_the_pipelines_parameters_capabilities_and_tags(generated):
    config = load_config(generated)
    for name in ("web", "orders", "search", "ledger"):
        deploy = config[f"shop-{name}"]["deploy"]["parameters"]
        assert deploy["stack_name"] == f"shop-{name}"
        assert deploy["template_file"] == "templates/service.yaml"
        # Roles without names; no transform (the ingress stack has it).
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        expected = dict(params(generated, name))
        if name == "search":
            expected["ImageUri"] = NGINX
        if name == "ledger":
            expected["ImageUri"] = LEDGER
        assert sam_pairs(deploy["parameter_overrides"]) == expected
        assert deploy["tags"] == (f'app="shop" kind="service" managed-by="ecs-service-connect-kit" '
                                  f'service="{name}"')
        assert config[f"shop-{name}"]["validate"]["parameters"] == {
            "template_file": "templates/service.yaml", "lint": True}
    cluster = config["shop-cluster"]["deploy"]["parameters"]
    assert cluster["capabilities"] == "CAPABILITY_IAM"  # the Service Connect TLS role
    assert "parameter_overrides" not in cluster  # VPC and subnets: deploy-time only
    network = config["shop-web-network"]["deploy"]["parameters"]
    assert "capabilities" not in network
    assert sam_pairs(network["parameter_overrides"]) == {"AppName": "shop",
                                                         "ClusterStackName": "shop-cluster",
                                                         "ServiceName": "web"}
    ingress = config["shop-orders-ingress"]["deploy"]["parameters"]
    assert ingress["template_file"] == "templates/ingress.yaml"
    # AWS::LanguageExtensions is a macro-like transform: CAPABILITY_AUTO_EXPAND
    # (CreateStack's Capabilities).
    assert ingress["capabilities"] == "CAPABILITY_AUTO_EXPAND"
    assert ingress["tags"] == ('app="shop" kind="ingress" managed-by="ecs-service-connect-kit" '
                               'service="orders"')
    assert sam_pairs(ingress["parameter_overrides"]) == {
        "AppName": "shop", "ServiceName": "orders", "Callers": "web", "Callees": "1:none",
        "ContainerPort": params(generated, "orders")["ContainerPort"],
        # The edges' alarms, judged by orders' own settings (generator.stacks.alarms).
        "DiscoveryName": params(generated, "orders")["DiscoveryName"],
        **{name: params(generated, "orders")[name] for name in (
            "AlarmErrorRatePercent", "AlarmMinimumRequests", "AlarmEvaluationMinutes")}}


def test_the_committed_samconfig_is_the_generated_one(repo_root):
    result = run_cli("generate", "--check")
    assert result.returncode == 0, result.stderr
    config = load_config(repo_root)
    # cluster.yaml always declares the (conditional) Service Connect TLS role.
    assert config["demo-cluster"]["deploy"]["parameters"]["capabilities"] == "CAPABILITY_IAM"


def test_a_stale_samconfig_fails_generate_check(generated):
    path = generated / "samconfig.toml"
    original = path.read_bytes()
    try:
        path.write_bytes(original.replace(b"shop-web", b"shop-www", 1))
        result = run_cli("generate", "--topology", generated / "topology.yaml",
                         "--out", generated / "templates", "--check")
        assert result.returncode == 1
        assert f"{path}: out of date" in result.stderr
    finally:
        path.write_bytes(original)


def test_sam_overrides_adds_the_deploy_time_values(generated):
    topology = generated / "topology.yaml"
    result = run_cli("sam-overrides", "--topology", topology, "shop-orders",
                     "ImageUri=repo/orders:1", "Subnets=subnet-0a,subnet-0b",
                     "LoadBalancerSubnets=", "PermissionsBoundaryArn=arn:aws:iam::1:policy/b",
                     "ServiceConnectTlsRoleArn=arn:aws:iam::1:role/r", "Cpu=512")
    assert result.returncode == 0, result.stderr
    items = re.findall(r'\S+?="(?:[^"\\]|\\.)*"', result.stdout)
    values = sam_pairs(items)
    assert values == {**params(generated, "orders"), "ImageUri": "repo/orders:1",
                      "Subnets": "subnet-0a,subnet-0b", "LoadBalancerSubnets": "",
                      "PermissionsBoundaryArn": "arn:aws:iam::1:policy/b",
                      "ServiceConnectTlsRoleArn": "arn:aws:iam::1:role/r", "Cpu": "512"}

    missing = run_cli("sam-overrides", "--topology", topology, "shop-orders", "Subnets=x")
    assert missing.returncode == 2
    assert missing.stderr.splitlines() == [
        "error: sam-overrides: shop-orders needs ImageUri, LoadBalancerSubnets, "
        "PermissionsBoundaryArn, ServiceConnectTlsRoleArn (deploy-time values: see the "
        "README's \"SAM users\")"]
    # search's image is in the file already.
    search = run_cli("sam-overrides", "--topology", topology, "shop-search", "Subnets=x",
                     "LoadBalancerSubnets=", "PermissionsBoundaryArn=b",
                     "ServiceConnectTlsRoleArn=r")
    assert search.returncode == 0 and f'ImageUri="{NGINX}"' in search.stdout


@needs_sam
@pytest.mark.parametrize("label", ["committed", "workloads"])
def test_every_template_passes_sam_validate_lint(label, repo_root, generated):
    root = repo_root if label == "committed" else generated
    for template in sorted((root / "templates").glob("*.yaml")):
        result = subprocess.run([SAM, "validate", "--lint", "-t", str(template)],
                                capture_output=True, text=True, env=SAM_ENV, timeout=300)
        assert result.returncode == 0, (template.name, result.stdout[-2000:],
                                        result.stderr[-2000:])
        assert "is a valid SAM Template" in result.stdout + result.stderr


@needs_sam
def test_sam_validate_reads_its_config_environment(generated):
    # SAM CLI resolves template_file from the working directory: the repository root.
    result = subprocess.run([SAM, "validate", "--config-env", "shop-web"], cwd=generated,
                            capture_output=True, text=True, env=SAM_ENV, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "service.yaml is a valid SAM Template" in result.stdout + result.stderr


@needs_sam
def test_sam_clis_own_parser_reads_the_params_files_values(generated):
    python = Path(SAM).parent / "python"
    if not python.exists():
        pytest.skip("sam is not from a Python venv here; its parser cannot be imported")
    script = (
        "import json, sys\n"
        "from samcli.lib.config.samconfig import SamConfig\n"
        "from samcli.cli.types import CfnParameterOverridesType\n"
        "config = SamConfig(sys.argv[1])\n"
        "out = {}\n"
        "for env in sys.argv[2:]:\n"
        "    raw = config.get_all(['deploy'], 'parameters', env)['parameter_overrides']\n"
        "    out[env] = CfnParameterOverridesType().convert(raw, None, None)\n"
        "print(json.dumps(out))\n")
    services = ("web", "orders", "search", "admin")
    result = subprocess.run([str(python), "-c", script, str(generated),
                             *(f"shop-{s}" for s in services)],
                            capture_output=True, text=True, env=SAM_ENV, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    parsed = json.loads(result.stdout)
    for service in services:
        expected = dict(params(generated, service))
        if service == "search":
            expected["ImageUri"] = NGINX
        assert parsed[f"shop-{service}"] == expected, service
