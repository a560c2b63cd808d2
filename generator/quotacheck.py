"""Every AWS quota the rendered files must fit, checked at generate time, before writing.

A topology that cannot fit is refused with one line that names the service or file, the
quota and the way out (`QuotaError`, exit 2 like any other bad input). The counts are
taken from the rendered templates, with Fn::ForEach expanded for the largest stack each
template makes, so what is checked is what CloudFormation will count.
"""
from __future__ import annotations

from typing import Mapping

from generator import paramscheck
from generator.awsfacts import quotas
from generator.topology import Topology, TopologyError

SERVICE_TEMPLATE = "service.yaml"
INGRESS_TEMPLATE = "ingress.yaml"
PIPELINE_TEMPLATE = "pipeline.yaml"
PARAMS_PREFIX = "params/"


class QuotaError(TopologyError):
    """A topology past an AWS quota; str() is the one-line message."""


def _where(topology: Topology) -> str:
    """Where an environment's services are in topology.yaml ("" without environments)."""
    return f"environments.{topology.environment.name}." if topology.environment else ""


def inbound_rules(topology: Topology, service) -> int:
    """Rules on a service's task security group: one per caller (or the stand-in for none),
    one for its load balancer."""
    return max(1, len(topology.callers(service))) + (1 if service.public else 0)


def outbound_rules(topology: Topology, service) -> int:
    """Rules leaving a service's task security group: one per callee (or the stand-in for
    none) and the platform's (HTTPS, prefix lists, egress.allow)."""
    return max(1, len(service.calls)) + topology.egress.platform_rules


def check_security_groups(topology: Topology) -> None:
    # One quota, "Inbound or outbound rules per security group", bounds each direction.
    limit = topology.quotas.security_group_inbound_rules
    for service in topology.services:
        rules = outbound_rules(topology, service)
        if rules > limit:
            raise QuotaError(
                f"{topology.source}: {_where(topology)}services.{service.name}: "
                f"{len(service.calls)} callees and "
                f"{topology.egress.platform_rules} egress rule(s) need {rules} outbound rules "
                f"on its task security group, over the quota of {limit} "
                f"({quotas.SECURITY_GROUP_INBOUND_RULES.source}); request a higher 'Inbound "
                "or outbound rules per security group' in Service Quotas and declare it as "
                "quotas.security_group_inbound_rules, or give egress.allow fewer entries")
    for service in topology.services:
        rules = inbound_rules(topology, service)
        if rules > limit:
            callers = len(topology.callers(service))
            extra = " and its load balancer" if service.public else ""
            raise QuotaError(
                f"{topology.source}: {_where(topology)}services.{service.name}: {callers} "
                f"callers{extra} need "
                f"{rules} inbound rules on its task security group, over the quota of {limit} "
                f"({quotas.SECURITY_GROUP_INBOUND_RULES.source}); request a higher 'Inbound "
                "or outbound rules per security group' in Service Quotas and declare it as "
                "quotas.security_group_inbound_rules, or split the service")


def _resources(document: dict, items: dict[str, int]) -> int:
    """Resources after Fn::ForEach expansion, `items[loop name]` items in each loop."""
    count = 0
    for key, value in (document.get("Resources") or {}).items():
        if key.startswith("Fn::ForEach::"):
            count += items.get(key.removeprefix("Fn::ForEach::"), 1) * len(value[2])
        else:
            count += 1
    return count


def _largest_resources(topology: Topology, document: dict) -> tuple[int, str]:
    """The most resources any one stack of this template holds, and the service whose
    stack it is: the loops of the ingress template run over each service's callers (a
    rule and an alarm each) and callees (or the stand-in for none)."""
    from generator.stacks import alarms, ingress

    return max(((_resources(document, {
        ingress.CALLER_INGRESS: max(1, len(topology.callers(service))),
        alarms.CALLER_ALARM: max(1, len(topology.callers(service))),
        ingress.CALLEE_EGRESS: max(1, len(service.calls))}), service.name)
        for service in topology.services), default=(_resources(document, {}), ""))


def check_templates(topology: Topology, files: Mapping[str, bytes],
                    documents: Mapping[str, dict]) -> None:
    for relative, content in sorted(files.items()):
        if not relative.endswith(".yaml"):
            continue
        size = len(content)
        if size > quotas.TEMPLATE_URL_BYTES.limit:
            raise QuotaError(f"{relative}: {size:,} bytes, over CloudFormation's "
                             f"{quotas.TEMPLATE_URL_BYTES.limit:,}-byte template limit "
                             f"({quotas.CFN_QUOTAS}); split the topology")
        document = documents[relative]
        resources, largest = _largest_resources(topology, document)
        counts = (
            (quotas.RESOURCES_PER_TEMPLATE, resources),
            (quotas.OUTPUTS_PER_TEMPLATE, len(document.get("Outputs") or {})),
            (quotas.PARAMETERS_PER_TEMPLATE, len(document.get("Parameters") or {})),
        )
        for quota, count in counts:
            if count > quota.limit:
                hint = ("use fewer distinct environment variable names and secret names "
                        "across services (each distinct name is one parameter of the one "
                        "template)"
                        if quota is quotas.PARAMETERS_PER_TEMPLATE and relative == SERVICE_TEMPLATE
                        else f"services.{largest}'s ingress stack holds a rule and an alarm "
                             "per caller and a rule per callee: give it fewer callers"
                        if quota is quotas.RESOURCES_PER_TEMPLATE and relative == INGRESS_TEMPLATE
                        else "split the topology")
                raise QuotaError(f"{relative}: {count} {quota.name.split(' per ')[0]}, over "
                                 f"CloudFormation's {quota.limit} ({quota.source}); {hint}")
        if relative == PIPELINE_TEMPLATE:
            _check_pipeline(document)
        _check_alarms(relative, document)


def _alarm_resources(node):
    """Every AWS::CloudWatch::Alarm in a template, Fn::ForEach bodies included."""
    for key, value in (node.get("Resources") or {}).items() if isinstance(node, dict) else ():
        if key.startswith("Fn::ForEach::"):
            yield from _alarm_resources({"Resources": value[2]})
        elif isinstance(value, dict) and value.get("Type") == "AWS::CloudWatch::Alarm":
            yield key, value


def _check_alarms(relative: str, document: dict) -> None:
    limit = quotas.METRICS_PER_MATH_ALARM
    for logical_id, alarm in _alarm_resources(document):
        metrics = [query for query in alarm["Properties"].get("Metrics", [])
                   if "MetricStat" in query]
        if len(metrics) > limit.limit:
            raise QuotaError(f"{relative}: {logical_id} reads {len(metrics)} metrics, over "
                             f"CloudWatch's {limit.limit} {limit.name} ({limit.source})")


def _check_pipeline(document: dict) -> None:
    for resource in (document.get("Resources") or {}).values():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::CodePipeline::Pipeline":
            continue
        stages = resource["Properties"]["Stages"]
        actions = [len(s.get("Actions", [])) if isinstance(s, dict) else 1 for s in stages]
        for quota, count in ((quotas.STAGES_PER_PIPELINE, len(stages)),
                             (quotas.ACTIONS_PER_STAGE, max(actions, default=0)),
                             (quotas.ACTIONS_PER_PIPELINE, sum(actions))):
            if count > quota.limit:
                raise QuotaError(f"pipeline.yaml: {count} {quota.name}, over CodePipeline's "
                                 f"{quota.limit} ({quota.source})")


# Per service: its service, network and ingress stacks.
STACKS_PER_SERVICE = 3


def check_account(topology: Topology) -> None:
    """Stacks and exports per account and Region, security groups per VPC: environments
    that share an account (or a VPC) share its quotas."""
    groups: dict[tuple[str, str], list[Topology]] = {}
    vpcs: dict[str, list[Topology]] = {}
    for deployment in topology.deployments:
        environment = deployment.environment
        key = (environment.account, environment.region) if environment else ("", "")
        groups.setdefault(key, []).append(deployment)
        if environment:
            vpcs.setdefault(environment.network.vpc_id, []).append(deployment)
    for (account, region), deployments in groups.items():
        services = sum(len(d.services) for d in deployments)
        # bootstrap and pipeline once, then each deployment's cluster and service stacks;
        # the bootstrap stack's exports and each cluster's (generator.stacks.cluster).
        stacks = 2 + sum(1 + STACKS_PER_SERVICE * len(d.services) for d in deployments)
        exports = 3 + sum(7 + len(d.services) for d in deployments)
        for quota, count in ((quotas.STACKS_PER_ACCOUNT, stacks),
                             (quotas.EXPORTS_PER_ACCOUNT, exports)):
            if count > quota.limit:
                where = (f"environments {', '.join(d.environment.name for d in deployments)} "
                         f"(account {account}, {region}): " if account else "")
                raise QuotaError(f"{topology.source}: {where}{services} services need "
                                 f"{count} {quota.name.split(' per ')[0]}, over the "
                                 f"{quota.limit} per account and region ({quota.source})")
    for vpc, deployments in vpcs.items():
        # Each service's task group and, when public, its load balancer's; each cluster's
        # stand-in group for no callers.
        groups_needed = sum(1 + len(d.services) + sum(s.public for s in d.services)
                            for d in deployments)
        limit = quotas.SECURITY_GROUPS_PER_VPC
        if groups_needed > limit.limit:
            raise QuotaError(
                f"{topology.source}: environments "
                f"{', '.join(d.environment.name for d in deployments)} share {vpc}: "
                f"{groups_needed} security groups, over the {limit.limit} per VPC "
                f"({limit.source}); give them separate VPCs or raise the quota")


def check_ingress_parameters(topology: Topology, documents: Mapping[str, dict]) -> None:
    """The ingress stacks' parameters have no params file, so they are checked here against
    ingress.yaml's declarations (CommaDelimitedList has no MaxLength: only this check bounds
    the Callers list to CloudFormation's parameter value size)."""
    from generator import params

    declared = documents[INGRESS_TEMPLATE].get("Parameters", {})
    for service in topology.services:
        for key, value in params.ingress_parameters(topology, service).items():
            problem = paramscheck.parameter_problem(declared[key], value)
            if problem:
                raise QuotaError(
                    f"{topology.source}: {_where(topology)}services.{service.name}: its "
                    f"ingress stack's {key} "
                    f"parameter: {problem}; give the service fewer callers, or callers with "
                    "shorter names")


def check_params(files: Mapping[str, bytes], documents: Mapping[str, dict]) -> None:
    """lint's params checks (P1001-P1004), so that generate never writes a file lint rejects."""
    service = documents[SERVICE_TEMPLATE]
    parameters, rules = service.get("Parameters", {}), service.get("Rules", {})
    for relative, content in sorted(files.items()):
        if not relative.startswith(PARAMS_PREFIX):
            continue
        findings = paramscheck.check_params_text(relative, content.decode(), parameters, rules)
        findings = [f for f in findings if f.level == "error"]
        if findings:
            first = findings[0]
            raise TopologyError(f"{relative}: {first.rule} {first.message} "
                                "(from topology.yaml; fix the service's settings there)")


def execution_role_policy_chars(topology: Topology, service) -> int:
    """The execution role's inline policies as IAM counts them for this service: the pull
    policy (every intrinsic at its longest) and the read-secrets policy with exactly the
    ARNs this service names (what its stack's conditions keep)."""
    from troposphere import encode_to_dict

    from generator.awsfacts import permissions
    from generator.stacks import service as service_stack

    role = encode_to_dict(service_stack.execution_role(topology).to_dict())
    pull = [p for p in role["Properties"]["Policies"]
            if isinstance(p, dict) and p.get("PolicyName") == "pull-image-and-write-logs"]
    size = sum(permissions.policy_size(p["PolicyDocument"]) for p in pull)
    if not service.secrets:
        return size
    arns = [arn for _, arn in service.secrets]
    statements = [
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
         "Resource": [a for a in arns if a.split(":")[2] == "secretsmanager"]},
        {"Effect": "Allow", "Action": ["ssm:GetParameters"],
         "Resource": [a for a in arns if a.split(":")[2] == "ssm"]},
        {"Effect": "Allow", "Action": ["kms:Decrypt"],
         "Resource": [service.secrets_kms_key_arn],
         "Condition": {"StringLike": {"kms:ViaService": [
             "secretsmanager.*.amazonaws.com", "ssm.*.amazonaws.com"]}}},
    ]
    document = {"Version": "2012-10-17", "Statement": [s for s in statements if all(s["Resource"])
                                                       and s["Resource"]]}
    return size + permissions.policy_size(document)


def check_execution_roles(topology: Topology) -> None:
    limit = quotas.ROLE_INLINE_POLICY_CHARS
    for service in topology.services:
        if not service.secrets:
            continue
        size = execution_role_policy_chars(topology, service)
        if size > limit.limit:
            raise QuotaError(
                f"{topology.source}: {_where(topology)}services.{service.name}.secrets: the "
                "execution role's "
                f"policies would be {size:,} characters, over IAM's {limit.limit:,} for a "
                f"role's inline policies ({limit.source}); give the service fewer secrets "
                "(one JSON secret can hold several values)")


def check(topology: Topology, files: Mapping[str, bytes], documents: Mapping[str, dict]) -> None:
    """`files` and `documents` as render.render_with_documents returns them: the bytes to
    write, and each template as the dict it was written from (nothing is parsed back)."""
    for deployment in topology.deployments:
        check_security_groups(deployment)
        check_execution_roles(deployment)
    check_account(topology)
    check_templates(topology, files, documents)
    for deployment in topology.deployments:
        check_ingress_parameters(deployment, documents)
    check_params(files, documents)
    from generator import dashboard  # each dashboard body inside CloudWatch's limits

    dashboard.check(files)


