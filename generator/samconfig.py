"""samconfig.toml: one AWS SAM CLI config environment per stack, so that
`sam deploy --config-env <stack>` deploys a stack with the values the pipeline uses.

Written by `generate` next to the templates directory (the repository root for the
default `--out templates`), in the order the deployer goes (design notes, "Deployer
order"): the cluster stack, every network stack, every ingress stack, then the service
stacks wave by wave, callees first. Each environment has `deploy` parameters (stack name, template, the
capabilities that stack needs, the deployer's tags and the topology-owned parameter
values of templates/params/<service>.json) and `validate` parameters (template, lint), so
`sam validate --config-env <stack>` lints the same template.

The format is SAM CLI's configuration file
(https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-sam-cli-config.html):
`[<environment>.<command>.parameters]` tables; parameter_overrides as a list of
`Key="Value"` strings. Deploy-time values (ImageUri of a built service, Subnets,
LoadBalancerSubnets, PermissionsBoundaryArn, ServiceConnectTlsRoleArn, the cluster's
VpcId and subnets) depend on the account and the build, so they are not here: a SAM user
passes them, see the README's "SAM users" section (a command-line --parameter-overrides
replaces the file's list rather than merging with it, aws/aws-sam-cli#2380, hence
`python -m generator sam-overrides`).
"""
from __future__ import annotations

import json

from generator import names, params, plan as plan_module
from generator.topology import Topology

FILE = "samconfig.toml"
CONFIG_VERSION = 0.1
# Per template: what CloudFormation requires to deploy it. The service template creates
# IAM roles without names; the ingress template uses the AWS::LanguageExtensions
# transform; the cluster template declares the Service Connect TLS role; the network
# template needs none.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html (Capabilities)
SERVICE_CAPABILITIES = ("CAPABILITY_IAM",)
INGRESS_CAPABILITIES = ("CAPABILITY_AUTO_EXPAND",)


def _toml(value) -> str:
    """A TOML value: basic strings are JSON strings; lists of them; booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[\n" + "".join(f"  {_toml(item)},\n" for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _sam_value(value: str) -> str:
    """A value as SAM CLI's Key="Value" syntax quotes it (backslash escapes " and \\)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def overrides(values: dict[str, str]) -> list[str]:
    return [f"{key}={_sam_value(str(value))}" for key, value in sorted(values.items())]


def _key(name: str) -> str:
    """A TOML table key: bare when it can be (stack names are letters, digits and '-')."""
    return name if name.replace("-", "").replace("_", "").isalnum() and name.isascii() \
        else _toml(name)


def _tags(tags: dict[str, str]) -> str:
    return " ".join(f"{key}={_sam_value(value)}" for key, value in sorted(tags.items()))


def stacks(topology: Topology) -> list[dict]:
    """[{name, template, capabilities, tags, parameters}] in deploy order."""
    order = plan_module.build(topology).order
    # cluster.yaml always declares the Service Connect TLS role (under a condition, so it
    # can outlive service_connect_tls), and capabilities go by the declared resources.
    cluster_capabilities = ("CAPABILITY_IAM",)
    result = [{
        "name": topology.cluster_stack_name, "template": "cluster.yaml",
        "capabilities": cluster_capabilities,
        "tags": {"app": topology.app, "kind": "cluster", "managed-by": params.MANAGED_BY},
        "parameters": params.cluster_parameters(topology),
    }]
    for name in order:
        service = topology.service(name)
        result.append({
            "name": topology.network_stack_name(service), "template": "network.yaml",
            "capabilities": (),
            "tags": params.tags(topology, service, params.KIND_NETWORK),
            "parameters": params.network_parameters(topology, service),
        })
    for name in order:
        service = topology.service(name)
        result.append({
            "name": topology.ingress_stack_name(service), "template": "ingress.yaml",
            "capabilities": INGRESS_CAPABILITIES,
            "tags": params.tags(topology, service, params.KIND_INGRESS),
            "parameters": params.ingress_parameters(topology, service),
        })
    for name in order:
        service = topology.service(name)
        values = dict(params.parameters(topology, service))
        if service.image:  # known now: not built
            values["ImageUri"] = service.image
        result.append({
            "name": topology.stack_name(service), "template": "service.yaml",
            "capabilities": SERVICE_CAPABILITIES,
            "tags": params.tags(topology, service),
            "parameters": values,
        })
    return result


def deploy_time_parameters(topology: Topology, stack: str) -> tuple[str, ...]:
    """What a SAM user must pass for `stack` (the file cannot know it)."""
    for entry in stacks(topology):
        if entry["name"] != stack:
            continue
        if entry["template"] == "cluster.yaml":
            return tuple(name for name in (names.VPC_ID, names.PRIVATE_SUBNETS,
                                           names.PUBLIC_SUBNETS)
                         if name not in entry["parameters"])
        if entry["template"] in ("network.yaml", "ingress.yaml"):
            return ()
        required = [names.SUBNETS_PARAMETER, names.LOAD_BALANCER_SUBNETS_PARAMETER,
                    names.BOUNDARY_PARAMETER]
        if "ImageUri" not in entry["parameters"]:
            required.insert(0, "ImageUri")
        if topology.service_connect_tls:
            required.append(names.TLS_ROLE_PARAMETER)
        return tuple(required)
    raise KeyError(stack)


def render(topology: Topology, templates_dir: str = "templates") -> bytes:
    lines = [
        "# Generated from topology.yaml by `python -m generator generate`; do not edit.",
        "# One SAM CLI config environment per stack, in deploy order: "
        "`sam deploy --config-env <stack>`.",
        "# Deploy-time values (image, subnets, permissions boundary, ...) are not here: see "
        "the README's \"SAM users\".",
        f"version = {CONFIG_VERSION}",
    ]
    for deployment in topology.deployments:
        region = deployment.environment.region if deployment.environment else None
        for entry in stacks(deployment):
            lines += _entry(entry, templates_dir, region)
    return ("\n".join(lines) + "\n").encode("utf-8")


def _entry(entry: dict, templates_dir: str, region: str | None) -> list[str]:
    template = f"{templates_dir}/{entry['template']}"
    lines = ["", f"[{_key(entry['name'])}.deploy.parameters]",
             f"stack_name = {_toml(entry['name'])}",
             f"template_file = {_toml(template)}"]
    if region:
        lines.append(f"region = {_toml(region)}")
    if entry["capabilities"]:
        lines.append(f"capabilities = {_toml(' '.join(entry['capabilities']))}")
    lines.append(f"tags = {_toml(_tags(entry['tags']))}")
    if entry["parameters"]:
        lines.append(f"parameter_overrides = {_toml(overrides(entry['parameters']))}")
    lines += ["", f"[{_key(entry['name'])}.validate.parameters]",
              f"template_file = {_toml(template)}", "lint = true"]
    return lines
