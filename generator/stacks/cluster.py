"""The cluster stack: ECS cluster, Cloud Map namespace, one security group per service.

Each service's task security group lives here rather than in its service stack: a
caller-to-callee rule needs both groups, and with mutual callers (the seed's pair)
two service stacks would each need the other's group first. Here every rule is
security group to security group, on the callee's container port only.
"""
from __future__ import annotations

from troposphere import Export, GetAtt, Join, Output, Parameter, Ref, Sub, Tags, Template
from troposphere import ec2, ecs, servicediscovery

from generator import names
from generator.topology import Service, Topology

VPC = "VpcId"
PRIVATE_SUBNETS = "PrivateSubnetIds"
PUBLIC_SUBNETS = "PublicSubnetIds"
# What the public-subnets export holds when no service of the topology is public.
NO_PUBLIC_SUBNETS = "none: no service in topology.yaml is public"


def vpc_parameter() -> Parameter:
    return Parameter(
        VPC,
        Type="AWS::EC2::VPC::Id",
        Description="The existing VPC the cluster's tasks and the Cloud Map namespace live in.",
        ConstraintDescription="must be the id of an existing VPC",
    )


def private_subnets_parameter() -> Parameter:
    return Parameter(
        PRIVATE_SUBNETS,
        Type="List<AWS::EC2::Subnet::Id>",
        Description=(
            "Private subnets for the tasks, in at least two Availability Zones. They need a "
            "route to ECR and CloudWatch Logs (NAT gateway or VPC endpoints)."
        ),
        ConstraintDescription="must be existing subnet ids in the chosen VPC",
    )


def public_subnets_parameter() -> Parameter:
    return Parameter(
        PUBLIC_SUBNETS,
        Type="List<AWS::EC2::Subnet::Id>",
        Description=(
            "Public subnets for internet-facing load balancers, in at least two Availability "
            "Zones (an ALB refuses fewer)."
        ),
        ConstraintDescription="must be existing subnet ids in the chosen VPC",
    )


def namespace(topology: Topology) -> servicediscovery.PrivateDnsNamespace:
    return servicediscovery.PrivateDnsNamespace(
        "Namespace",
        Name=topology.namespace,
        Vpc=Ref(VPC),
        Description=f"Service Connect namespace of {topology.app}",
        Tags=Tags(app=topology.app),
    )


def cluster(topology: Topology) -> ecs.Cluster:
    return ecs.Cluster(
        "Cluster",
        ClusterName=Sub("${AWS::StackName}"),
        CapacityProviders=["FARGATE", "FARGATE_SPOT"],
        ClusterSettings=[ecs.ClusterSetting(Name="containerInsights", Value="enabled")],
        # By ARN: a name is resolved at deploy time and would also match an HTTP
        # namespace of the same name.
        ServiceConnectDefaults=ecs.ServiceConnectDefaults(Namespace=GetAtt("Namespace", "Arn")),
        Tags=Tags(app=topology.app),
    )


def task_security_group(topology: Topology, service: Service) -> ec2.SecurityGroup:
    return ec2.SecurityGroup(
        names.security_group_logical_id(service.name),
        GroupDescription=f"Tasks of {topology.app} service {service.name}",
        VpcId=Ref(VPC),
        Tags=Tags(Name=f"{topology.app}-{service.name}-tasks", app=topology.app),
    )


def caller_ingress(topology: Topology, callee: Service, caller: Service) -> ec2.SecurityGroupIngress:
    return ec2.SecurityGroupIngress(
        names.ingress_logical_id(caller.name, callee.name),
        GroupId=GetAtt(names.security_group_logical_id(callee.name), "GroupId"),
        SourceSecurityGroupId=GetAtt(names.security_group_logical_id(caller.name), "GroupId"),
        IpProtocol="tcp",
        FromPort=callee.port,
        ToPort=callee.port,
        Description=f"{caller.name} calls {callee.name} through Service Connect",
    )


def export(name: str, value, description: str, logical_id: str | None = None) -> Output:
    return Output(
        logical_id or name,
        Description=description,
        Value=value,
        Export=Export(Sub("${AWS::StackName}-" + name)),
    )


def outputs(topology: Topology) -> list[Output]:
    result = [
        export(names.CLUSTER_NAME, Ref("Cluster"), "ECS cluster name"),
        export(names.CLUSTER_ARN, GetAtt("Cluster", "Arn"), "ECS cluster ARN"),
        export(names.NAMESPACE_ARN, GetAtt("Namespace", "Arn"), "Cloud Map namespace ARN"),
        export(names.NAMESPACE_ID, GetAtt("Namespace", "Id"), "Cloud Map namespace id"),
        export(names.NAMESPACE_NAME, topology.namespace, "Cloud Map namespace DNS name"),
        export(names.VPC_ID, Ref(VPC), "VPC of the cluster"),
        export(names.PRIVATE_SUBNETS, Join(",", Ref(PRIVATE_SUBNETS)), "Task subnets"),
    ]
    # Exported even without a public service: every service stack names this import (in
    # resources it may never create), and a missing export must not be what stops a stack.
    public_subnets = (
        Join(",", Ref(PUBLIC_SUBNETS)) if topology.has_public_service else NO_PUBLIC_SUBNETS
    )
    result.append(export(names.PUBLIC_SUBNETS, public_subnets, "Load balancer subnets"))
    for service in topology.services:
        result.append(
            export(
                names.security_group_export(service.name),
                GetAtt(names.security_group_logical_id(service.name), "GroupId"),
                f"Task security group of {service.name}",
                logical_id=names.security_group_logical_id(service.name),
            )
        )
    return result


def interface(topology: Topology) -> dict:
    network = [VPC, PRIVATE_SUBNETS] + ([PUBLIC_SUBNETS] if topology.has_public_service else [])
    labels = {VPC: "VPC", PRIVATE_SUBNETS: "Task subnets", PUBLIC_SUBNETS: "Load balancer subnets"}
    return {
        "AWS::CloudFormation::Interface": {
            "ParameterGroups": [{"Label": {"default": "Network"}, "Parameters": network}],
            "ParameterLabels": {name: {"default": labels[name]} for name in network},
        }
    }


def build(topology: Topology) -> Template:
    template = Template(
        Description=(
            f"{topology.app}: ECS cluster, Cloud Map namespace {topology.namespace} and the "
            "task security groups that let each service admit its callers "
            "(generated from topology.yaml; do not edit)"
        )
    )
    template.set_version("2010-09-09")
    template.set_metadata(interface(topology))
    template.add_parameter(vpc_parameter())
    template.add_parameter(private_subnets_parameter())
    if topology.has_public_service:
        template.add_parameter(public_subnets_parameter())
    template.add_resource(namespace(topology))
    template.add_resource(cluster(topology))
    for service in topology.services:
        template.add_resource(task_security_group(topology, service))
    for callee in topology.services:
        for caller in topology.callers(callee):
            template.add_resource(caller_ingress(topology, callee, caller))
    template.add_output(outputs(topology))
    return template
