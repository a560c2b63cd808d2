"""300 services, about 1,200 call edges: `generate --lint` succeeds, lint is clean, and
what it wrote fits every AWS quota, counted here from the written files.

The counts are made by this file's own reading of the YAML and JSON (scalekit's loader)
and the limits are written down here, from AWS's pages, not imported from
generator.awsfacts.quotas: a wrong number or a wrong count in the generator's own
checks does not make these pass.
"""
from __future__ import annotations

import json
from collections import Counter

import pytest

from scalekit import ingress_parameters, load_template

# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html
CFN_RESOURCES_PER_TEMPLATE = 500
CFN_OUTPUTS_PER_TEMPLATE = 200
CFN_PARAMETERS_PER_TEMPLATE = 200
CFN_TEMPLATE_BYTES_IN_S3 = 1_000_000
CFN_TEMPLATE_BYTES_INLINE = 51_200  # larger ones must go by S3 URL (the deployer does)
CFN_PARAMETER_VALUE_BYTES = 4_096
CFN_STACKS_PER_REGION = 2_000  # default, adjustable
CFN_EXPORTS_PER_REGION = 5_000
# https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html#vpc-limits-security-groups
EC2_INBOUND_RULES_PER_SECURITY_GROUP = 60  # default, adjustable
# https://docs.aws.amazon.com/codepipeline/latest/userguide/limits.html
PIPELINE_STAGES = 50
PIPELINE_ACTIONS_PER_STAGE = 50
PIPELINE_ACTIONS = 500

# The design's bootstrap stack (design notes: DeployRoleArn, PermissionsBoundaryArn,
# TemplateBucketName); counted by hand when templates/ has no bootstrap.yaml.
BOOTSTRAP_EXPORTS = 3
SERVICES = 300


@pytest.fixture(scope="module")
def out(scale_generated):
    result, out_dir = scale_generated
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    return out_dir


@pytest.fixture(scope="module")
def params(out) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8"))["Parameters"]
            for path in sorted((out / "params").glob("*.json"))}


@pytest.fixture(scope="module")
def ingress(out) -> dict[str, dict]:
    return ingress_parameters(out)


@pytest.fixture(scope="module")
def templates(out) -> dict[str, dict]:
    return {path.name: load_template(path) for path in sorted(out.glob("*.yaml"))}


def _callers_list(values: dict) -> list[str]:
    return values["Callers"].split(",")


def test_generate_lint_exits_0_and_lint_is_clean(scale_generated, scale_document):
    result, out_dir = scale_generated
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    templates = sorted(path.name for path in out_dir.glob("*.yaml"))
    assert templates == ["bootstrap.yaml", "cluster.yaml", "ingress.yaml", "network.yaml",
                         "pipeline.yaml", "service.yaml"]
    files = len(templates) + len(list((out_dir / "params").glob("*.json")))
    assert files == len(templates) + SERVICES
    assert f"lint: {files} file(s) clean" in result.stdout, result.stdout[-2000:]
    assert result.stderr == ""


def test_one_params_file_and_ingress_stack_per_service_with_the_callers_implied(
        params, ingress, scale_document):
    services = scale_document["services"]
    assert set(params) == set(ingress) == set(services)
    expected = {name: sorted(c for c, s in services.items() if name in s["calls"])
                for name in services}
    for name, values in params.items():
        assert "Callers" not in values
        assert sorted(_callers_list(ingress[name])) == (expected[name] or ["none"]), name
        assert ingress[name]["ContainerPort"] == values["ContainerPort"]
        assert values["PublicLoadBalancer"] == ("true" if services[name].get("public")
                                                else "false")
        for key, value in {**values, **ingress[name]}.items():
            assert len(value.encode()) <= CFN_PARAMETER_VALUE_BYTES, (name, key)


def test_every_template_fits_the_size_quota(out):
    for path in sorted(out.glob("*.yaml")):
        assert path.stat().st_size <= CFN_TEMPLATE_BYTES_IN_S3, path.name


def _loops(document: dict) -> dict[str, list]:
    return {key: value for key, value in (document.get("Resources") or {}).items()
            if key.startswith("Fn::ForEach::")}


def test_ingress_template_resources_with_each_stacks_callers_expanded(templates, ingress):
    service = templates["ingress.yaml"]
    loops = _loops(service)
    # The count below is right only if the loops are over the Callers and Callees
    # parameters and make one resource per item each.
    assert sorted(loops) == ["Fn::ForEach::CalleeEgress", "Fn::ForEach::CallerErrorRateAlarm",
                             "Fn::ForEach::CallerIngress"]
    for loop, parameter, kind in (("CallerIngress", "Callers", "EC2::SecurityGroupIngress"),
                                  ("CalleeEgress", "Callees", "EC2::SecurityGroupEgress"),
                                  ("CallerErrorRateAlarm", "Callers", "CloudWatch::Alarm")):
        identifier, collection, body = loops[f"Fn::ForEach::{loop}"]
        assert collection == {"Ref": parameter}
        assert len(body) == 1
        assert next(iter(body.values()))["Type"] == f"AWS::{kind}"
    fixed = len(service["Resources"]) - len(loops)
    # Each caller: its ingress rule and its view's alarm; each callee: an egress rule.
    sizes = {name: fixed + 2 * len(_callers_list(values)) + len(values["Callees"].split(","))
             for name, values in ingress.items()}
    assert max(len(_callers_list(values)) for values in ingress.values()) == 55  # the hub
    assert max(sizes.values()) <= CFN_RESOURCES_PER_TEMPLATE


def test_other_templates_resources_outputs_parameters(templates):
    for name, document in templates.items():
        if name != "ingress.yaml":
            assert not _loops(document), name  # counted as written
            assert len(document.get("Resources") or {}) <= CFN_RESOURCES_PER_TEMPLATE, name
        assert len(document.get("Outputs") or {}) <= CFN_OUTPUTS_PER_TEMPLATE, name
        assert len(document.get("Parameters") or {}) <= CFN_PARAMETERS_PER_TEMPLATE, name


def test_inbound_rules_per_task_security_group(templates, params, ingress):
    # The task security group (network.yaml) carries no inline rules, so the rules on it
    # are exactly the ingress stack's rules, one per Callers item ('none' included: its
    # stand-in rule exists too), and, when public, the service stack's load balancer rule.
    network = templates["network.yaml"]
    groups = [r for r in network["Resources"].values() if r["Type"] == "AWS::EC2::SecurityGroup"]
    assert len(groups) == 1
    assert "SecurityGroupIngress" not in groups[0]["Properties"]
    service = templates["service.yaml"]
    lb_rules = [r for r in service["Resources"].values()
                if isinstance(r, dict) and r.get("Type") == "AWS::EC2::SecurityGroupIngress"]
    assert len(lb_rules) == 1 and lb_rules[0].get("Condition")  # only when public
    counts = {name: len(_callers_list(ingress[name])) + (values["PublicLoadBalancer"] == "true")
              for name, values in params.items()}
    worst = max(counts, key=counts.get)
    assert counts[worst] <= EC2_INBOUND_RULES_PER_SECURITY_GROUP, (worst, counts[worst])
    assert counts["auth"] >= 55


def _worst_case(stage):
    """A stage, or for a conditional one (Fn::If) the branch with the most actions."""
    if "Fn::If" in stage:
        branches = [b for b in stage["Fn::If"][1:] if isinstance(b, dict) and "Actions" in b]
        return max(branches, key=lambda b: len(b["Actions"]), default=None)
    return stage


def test_pipeline_stages_and_actions(templates):
    pipelines = [r for r in templates["pipeline.yaml"]["Resources"].values()
                 if isinstance(r, dict) and r.get("Type") == "AWS::CodePipeline::Pipeline"]
    assert len(pipelines) == 1
    stages = [_worst_case(stage) for stage in pipelines[0]["Properties"]["Stages"]]
    stages = [stage for stage in stages if stage is not None]
    actions = [len(stage["Actions"]) for stage in stages]
    assert [stage["Name"] for stage in stages][:2] == ["Source", "Build"]
    assert len(stages) <= PIPELINE_STAGES
    assert max(actions) <= PIPELINE_ACTIONS_PER_STAGE
    assert sum(actions) <= PIPELINE_ACTIONS


def _exports(document: dict) -> int:
    return sum(1 for output in (document.get("Outputs") or {}).values() if "Export" in output)


def test_stacks_and_exports_per_region(templates, params):
    services = len(params)
    # Stacks: bootstrap, pipeline, cluster, and per service its network, ingress and
    # service stacks.
    stacks = 3 + 3 * services
    assert stacks <= CFN_STACKS_PER_REGION
    per_stack = Counter({"cluster.yaml": 1, "pipeline.yaml": 1, "network.yaml": services,
                         "ingress.yaml": services, "service.yaml": services})
    exports = sum(_exports(templates[name]) * count for name, count in per_stack.items())
    if "bootstrap.yaml" not in templates:
        exports += BOOTSTRAP_EXPORTS
    else:
        exports += _exports(templates["bootstrap.yaml"])
    assert _exports(templates["network.yaml"]) == 1
    assert exports <= CFN_EXPORTS_PER_REGION
    assert exports >= services  # one task security group export per service at least
