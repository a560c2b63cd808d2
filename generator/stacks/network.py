"""The network stack: one per service, holding only that service's task security group.

Why a stack of its own: the rules that admit a service's callers (in the callee's ingress
stack) need every caller's group to exist first, and mutual callers (the seed's pair)
would otherwise each wait for the other's service stack. A group with no rules has no
dependencies, so every network stack can be created before any service stack, and a
removed service's group is deleted last, once no callee imports it any more.
Like service.yaml, it is one template deployed once per service.
"""
from __future__ import annotations

from troposphere import (
    Export, GetAtt, ImportValue, Output, Parameter, Ref, Sub, Tags, Template, ec2,
)

from generator import egress, names
from generator.stacks import cluster
from generator.topology import Topology

_DNS_LABEL_PATTERN = r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$"


def parameters() -> list[Parameter]:
    return [
        Parameter(
            names.CLUSTER_STACK_PARAMETER, Type="String",
            AllowedPattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$",
            Description="Name of the cluster stack whose VPC the group belongs to.",
            ConstraintDescription="must be a CloudFormation stack name",
        ),
        Parameter(
            "ServiceName", Type="String", MaxLength=63, AllowedPattern=_DNS_LABEL_PATTERN,
            Description="The service whose tasks this group is attached to.",
            ConstraintDescription="must be a DNS label: a-z, 0-9 and '-', starting with a letter",
        ),
    ]


def platform_egress(topology: Topology) -> list[ec2.SecurityGroupRule]:
    """HTTPS for ECR, logs, secrets and ECS, and topology.yaml's egress.allow: listing them
    replaces EC2's default allow-all outbound rule (generator.egress says why each)."""
    rules = [ec2.SecurityGroupRule(
        IpProtocol="tcp", FromPort=egress.HTTPS_PORT, ToPort=egress.HTTPS_PORT,
        CidrIp=topology.egress.https,
        Description="HTTPS: ECR, CloudWatch Logs, Secrets Manager, SSM, ECS")]
    rules += [ec2.SecurityGroupRule(
        IpProtocol="tcp", FromPort=egress.HTTPS_PORT, ToPort=egress.HTTPS_PORT,
        DestinationPrefixListId=prefix_list, Description="HTTPS: S3 (image layers)")
        for prefix_list in topology.egress.https_prefix_lists]
    rules += [ec2.SecurityGroupRule(
        IpProtocol="tcp", FromPort=allowed.from_port, ToPort=allowed.to_port,
        CidrIp=allowed.cidr, Description=f"topology.yaml egress.allow: {allowed.cidr} "
                                         f"port {allowed.ports}")
        for allowed in topology.egress.allow]
    return rules


def task_security_group(topology: Topology) -> ec2.SecurityGroup:
    # No ingress here: the ingress stack admits exactly its callers, on its port only, and
    # adds the outbound rules to the service's callees.
    return ec2.SecurityGroup(
        "TaskSecurityGroup",
        # The wording predates the ingress stacks; GroupDescription is create-only
        # (AWS::EC2::SecurityGroup), so rewording it would replace every task's group.
        GroupDescription=Sub("Tasks of ${ServiceName}; its service stack admits its callers"),
        VpcId=ImportValue(Sub("${%s}-%s" % (names.CLUSTER_STACK_PARAMETER, names.VPC_ID))),
        SecurityGroupEgress=platform_egress(topology),
        Tags=Tags(Name=Sub("${ServiceName}-tasks"), app=Ref(names.APP_PARAMETER)),
    )


def outputs() -> list[Output]:
    return [Output(
        "TaskSecurityGroup",
        Description="Task security group; callees' ingress stacks import it as a rule source",
        Value=GetAtt("TaskSecurityGroup", "GroupId"),
        Export=Export(Sub("${AWS::StackName}-%s" % names.TASK_SECURITY_GROUP)),
    )]


def build(topology: Topology) -> Template:
    template = Template(
        Description="The task security group of one service, deployed once per service as "
                    "<app>-<service>-network (generated from topology.yaml; do not edit)"
    )
    template.set_version("2010-09-09")
    template.add_parameter(parameters())
    template.add_parameter(cluster.app_parameter(topology))
    template.add_resource(task_security_group(topology))
    template.add_output(outputs())
    return template
