"""
E9005: container ports must not be opened to CIDR ranges by security-group ingress.
"""

import importlib.util
import os

from cfnlint.rules import CloudFormationLintRule, RuleMatch

# Loaded by path: cfn-lint imports rule files outside any package (see _common).
_spec = importlib.util.spec_from_file_location(
    "_service_connect_rules_common", os.path.join(os.path.dirname(__file__), "_common.py")
)
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)

# IpProtocol -1 opens every port whatever FromPort/ToPort say; an intrinsic
# protocol is unknown, so it matches any port protocol but the range applies.
_EVERY_PORT = "-1"
_ANY = "any"
_PROTOCOLS = {"-1": _EVERY_PORT, "tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp"}
_LOAD_BALANCER_TYPES = (
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::ElasticLoadBalancing::LoadBalancer",
)


def _port(value):
    """An int for a literal port, the normalized intrinsic otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value) if value.lstrip("-").isdigit() else None
    if common.is_intrinsic(value):
        return common.normalize(value)
    return None


def _describe(port):
    if isinstance(port, dict) and "Ref" in port:
        return f"Ref {port['Ref']}"
    return str(port)


def _protocol(value):
    """tcp/udp/_EVERY_PORT for literals, None for port-less protocols (icmp...)."""
    if common.is_intrinsic(value):
        return _ANY
    return _PROTOCOLS.get(str(value).lower())


def _covers(from_port, to_port, port):
    if isinstance(port, int):
        return (
            isinstance(from_port, int)
            and isinstance(to_port, int)
            and from_port <= port <= to_port
        )
    # An intrinsic port is only known to be covered by a range bounded by the
    # very same value, or by the whole port space.
    if port is not None and port in (from_port, to_port):
        return True
    return from_port in (0, -1) and to_port in (65535, -1)


class ContainerPortIngressFromCidr(CloudFormationLintRule):
    id = "E9005"
    shortdesc = "No CIDR ingress to container ports"
    description = (
        "Security-group ingress from CidrIp/CidrIpv6 must not cover a container port "
        "of an ECS task definition or an ECS service load balancer target"
    )
    source_url = (
        "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/"
        "security-network.html"
    )
    tags = ["resources", "ecs", "ec2", "security groups"]

    @staticmethod
    def _container_ports(cfn):
        """(port, protocol, where) for every container port in the template."""
        ports = []
        for name, properties, _ in common.resources_of_type(cfn, "AWS::ECS::TaskDefinition"):
            for container, _ in common.items(properties.get("ContainerDefinitions"), []):
                if not isinstance(container, dict):
                    continue
                for mapping, _ in common.items(container.get("PortMappings"), []):
                    if not isinstance(mapping, dict):
                        continue
                    for value, _ in common.alternatives(mapping.get("ContainerPort"), []):
                        port = _port(value)
                        if port is not None:
                            protocol = mapping.get("Protocol", "tcp")
                            ports.append(
                                (port, _protocol(protocol) or _ANY,
                                 f"{_describe(port)} (container {container.get('Name')} of {name})")
                            )
        for name, properties, _ in common.resources_of_type(cfn, "AWS::ECS::Service"):
            for target, _ in common.items(properties.get("LoadBalancers"), []):
                if not isinstance(target, dict):
                    continue
                for value, _ in common.alternatives(target.get("ContainerPort"), []):
                    port = _port(value)
                    if port is not None:
                        where = f"{_describe(port)} (load balancer target of {name})"
                        ports.append((port, "tcp", where))
        return ports

    @staticmethod
    def _load_balancer_only_groups(cfn):
        """Security groups attached to a load balancer and to no ECS service:
        public ingress there is the point of a load balancer."""

        def groups(resource_types, key_path):
            found = set()
            for resource_type in resource_types:
                for _, properties, _ in common.resources_of_type(cfn, resource_type):
                    value = properties
                    for key in key_path:
                        value = value.get(key) if isinstance(value, dict) else None
                    for group, _ in common.items(value, []):
                        target = common.referenced_resource(cfn, group)
                        if target is not None:
                            found.add(target[0])
            return found

        on_balancers = groups(_LOAD_BALANCER_TYPES, ["SecurityGroups"])
        on_services = groups(
            ["AWS::ECS::Service"],
            ["NetworkConfiguration", "AwsvpcConfiguration", "SecurityGroups"],
        )
        return on_balancers - on_services

    @staticmethod
    def _ingress_rules(cfn):
        """(security group logical id or None, rule, rule path) for all ingress."""
        for name, properties, path in common.resources_of_type(cfn, "AWS::EC2::SecurityGroup"):
            for rule, rule_path in common.items(
                properties.get("SecurityGroupIngress"), path + ["SecurityGroupIngress"]
            ):
                if isinstance(rule, dict):
                    yield name, rule, rule_path
        for _, properties, path in common.resources_of_type(
            cfn, "AWS::EC2::SecurityGroupIngress"
        ):
            target = common.referenced_resource(
                cfn, properties.get("GroupId", properties.get("GroupName"))
            )
            yield (target[0] if target else None), properties, path

    def match(self, cfn):
        matches = []
        ports = self._container_ports(cfn)
        if not ports:
            return matches
        exempt = self._load_balancer_only_groups(cfn)
        for group, rule, rule_path in self._ingress_rules(cfn):
            if group in exempt:
                continue
            cidr_key = next((k for k in ("CidrIp", "CidrIpv6") if k in rule), None)
            if cidr_key is None:
                continue
            protocol = _protocol(rule.get("IpProtocol"))
            if protocol is None:
                continue
            from_port, to_port = _port(rule.get("FromPort")), _port(rule.get("ToPort"))
            exposed = [
                where
                for port, port_protocol, where in ports
                if protocol == _EVERY_PORT
                or (
                    _ANY in (protocol, port_protocol) or protocol == port_protocol
                )
                and _covers(from_port, to_port, port)
            ]
            if exposed:
                matches.append(
                    RuleMatch(
                        rule_path + [cidr_key],
                        f"Ingress from {cidr_key} {common.normalize(rule[cidr_key])!r} "
                        f"covers container port {', '.join(sorted(set(exposed)))}; "
                        f"allow a security group (SourceSecurityGroupId) instead",
                    )
                )
        return matches
