"""The ingress stack: one per service (<app>-<service>-ingress), holding the rules that
admit the service's callers to its task security group, on its port only, and the
outbound rules that let its tasks reach its callees, on their ports only.

Why a stack of its own, and not in the service stack: the rules are one per caller, made
by `Fn::ForEach` over the `Callers` parameter, which needs the AWS::LanguageExtensions
transform (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-foreach.html).
On a template with that transform, AWS says to "provide the template instead of using
UsePreviousTemplate to ensure new parameter values ... are applied correctly" (UpdateStack's
UsePreviousTemplate; transform-aws-languageextensions.html, Remarks), so an operator's
console update with "Use current template" of a stack carrying it may not apply. Moving the
rules here leaves service.yaml, the stack operators edit, free of any transform; this
stack is the deployer's alone, and no operator has a reason to touch it.

Why not in the network stack: mutual callers (the seed's pair) would each import the
other's group before it exists. Every network stack is created before any ingress stack,
and the network stack of a removed caller is deleted only after every ingress stack
stopped importing its group. So the rules of a callee with 55 callers cost its ingress
stack 55 resources and no other stack anything, and adding a caller changes exactly the
ingress stacks of its callees.
"""
from __future__ import annotations

from troposphere import ImportValue, Parameter, Ref, Select, Split, Sub, Template, ec2

from generator import names
from generator.stacks import alarms
from generator.topology import Topology

CALLER = "Caller"
CALLER_INGRESS = "CallerIngress"
CALLEE = "Callee"
CALLEE_EGRESS = "CalleeEgress"
LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
_DNS_LABEL_PATTERN = r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$"


def network_import(service: str) -> ImportValue:
    """A service's task security group, exported by its network stack; `service` may be
    the loop's `${Caller}`."""
    return ImportValue(Sub("${%s}-%s-network-%s" % (names.APP_PARAMETER, service,
                                                     names.TASK_SECURITY_GROUP)))


def parameters() -> list[Parameter]:
    return [
        Parameter(
            names.APP_PARAMETER, Type="String", MaxLength=63, AllowedPattern=_DNS_LABEL_PATTERN,
            Description="The app (topology.yaml's app): <app>-<service>-network holds a "
                        "service's task security group.",
            ConstraintDescription="must be a DNS label: a-z, 0-9 and '-', starting with a letter",
        ),
        Parameter(
            "ServiceName", Type="String", MaxLength=63, AllowedPattern=_DNS_LABEL_PATTERN,
            Description="The service whose task security group admits its callers.",
            ConstraintDescription="must be a DNS label: a-z, 0-9 and '-', starting with a letter",
        ),
        Parameter(
            "ContainerPort", Type="Number", MinValue=1, MaxValue=65535,
            Description="The service's container port: the only port its callers reach.",
        ),
        Parameter(
            names.CALLEES_PARAMETER, Type="CommaDelimitedList",
            Description="The services this one calls, each as <port>:<name> (the callee's "
                        f"container port first), or '{names.NO_CALLEES}' when it calls none.",
            AllowedPattern=r"^[0-9]{1,5}:[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$",
            ConstraintDescription="<port>:<service name> items, comma-separated",
        ),
        Parameter(
            names.CALLERS_PARAMETER, Type="CommaDelimitedList",
            Description="The services that call this one (topology.yaml's calls, inverted), "
                        f"or '{names.NO_CALLERS}' when none does.",
            AllowedPattern=_DNS_LABEL_PATTERN,
            ConstraintDescription="service names (DNS labels), comma-separated",
        ),
    ]


def caller_ingress() -> dict:
    """The Resources entry that admits each caller's tasks on ContainerPort, and only there.

    Fn::ForEach cannot iterate over nothing (an empty CommaDelimitedList is one empty
    item), and cfn-lint does not expand a per-item Condition, so a service without
    callers lists names.NO_CALLERS: the cluster stack's security group that no task
    carries, whose rule admits nobody."""
    rule = ec2.SecurityGroupIngress(
        CALLER_INGRESS,
        GroupId=network_import("${ServiceName}"),
        SourceSecurityGroupId=network_import("${%s}" % CALLER),
        IpProtocol="tcp",
        FromPort=Ref("ContainerPort"),
        ToPort=Ref("ContainerPort"),
        Description=Sub("${%s} calls ${ServiceName} through Service Connect" % CALLER),
    )
    return {f"Fn::ForEach::{CALLER_INGRESS}": [
        CALLER, Ref(names.CALLERS_PARAMETER),
        {f"{CALLER_INGRESS}&{{{CALLER}}}": rule.to_dict()},
    ]}


def callee_egress() -> dict:
    """The Resources entry that lets the service's tasks reach each callee's tasks on the
    callee's port, and only there (the task security group has no allow-all outbound
    rule: generator.egress). The callee's Service Connect proxy listens on that port:
    ingressPortOverride's "In awsvpc mode and Fargate, the default value is the container
    port number" (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceConnectService.html).

    Items are "<port>:<name>": a name starts with a letter, so `&{}` (letters and digits
    only) still tells "80:a1" from "8:0a1" and the logical ids never collide. A service
    that calls none lists names.NO_CALLEES, whose rule points at the cluster stack's group
    that no task carries."""
    def part(index: int):
        return Select(index, Split(":", Ref(CALLEE)))

    rule = ec2.SecurityGroupEgress(
        CALLEE_EGRESS,
        GroupId=network_import("${ServiceName}"),
        DestinationSecurityGroupId=ImportValue(Sub(
            "${%s}-${Name}-network-%s" % (names.APP_PARAMETER, names.TASK_SECURITY_GROUP),
            Name=part(1))),
        IpProtocol="tcp",
        FromPort=part(0),
        ToPort=part(0),
        Description=Sub("${ServiceName} calls ${Name} through Service Connect", Name=part(1)),
    )
    return {f"Fn::ForEach::{CALLEE_EGRESS}": [
        CALLEE, Ref(names.CALLEES_PARAMETER),
        {f"{CALLEE_EGRESS}&{{{CALLEE}}}": rule.to_dict()},
    ]}


def caller_alarms() -> dict:
    """The Resources entry with the callers' view of each edge into the service."""
    return {f"Fn::ForEach::{alarms.CALLER_ALARM}": [
        CALLER, Ref(names.CALLERS_PARAMETER),
        {f"{alarms.CALLER_ALARM}&{{{CALLER}}}": alarms.caller_alarm(
            "${%s}" % CALLER).to_dict()},
    ]}


def build(topology: Topology) -> Template:
    template = Template(
        Description="The rules admitting one service's callers to its tasks, deployed once "
                    "per service as <app>-<service>-ingress by the deployer (generated from "
                    "topology.yaml; do not edit)"
    )
    template.set_version("2010-09-09")
    template.set_transform(LANGUAGE_EXTENSIONS)
    template.add_parameter(parameters() + alarms.edge_parameters())
    for name, condition in alarms.edge_conditions().items():
        template.add_condition(name, condition)
    template.resources.update(caller_ingress())
    template.resources.update(callee_egress())
    template.resources.update(caller_alarms())
    return template
