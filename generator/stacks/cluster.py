"""The cluster stack: ECS cluster and Cloud Map namespace. Nothing in it grows with the services.

Each service's task security group lives in its own small network stack
(generator.stacks.network), and the rules that admit its callers in its service stack,
so that adding or removing a service never changes this stack, its resource count stays
at two at any scale, and none of its exports depends on which services exist.

The subnets are parameters, not exports: CloudFormation refuses to change an export
that another stack imports, so exported subnets could never be changed. The deployer
reads them from this stack's parameters and passes them to every service stack.
"""
from __future__ import annotations

from awacs.aws import Action, Allow, Deny, PolicyDocument, Principal, Statement
from awacs.sts import AssumeRole
from troposphere import (
    Equals, Export, GetAtt, If, ImportValue, Join, Not, Output, Parameter,
    Ref, Sub, Tags, Template,
)
from troposphere import ec2, ecs, iam, servicediscovery

from generator import names
from generator.topology import Topology, network_export_name

VPC = "VpcId"
NAMESPACE = names.NAMESPACE_PARAMETER
PRIVATE_SUBNETS = "PrivateSubnetIds"
PUBLIC_SUBNETS = "PublicSubnetIds"
HAS_PUBLIC_SUBNETS = "PublicSubnetsGiven"
TLS_ROLE = "ServiceConnectTlsRole"
TLS_ROLE_KEPT = "ServiceConnectTlsRoleKept"
# The AWS managed policy for the Service Connect TLS infrastructure role, as the ECS
# developer guide's "Amazon ECS infrastructure IAM role" page prescribes
# (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/infrastructure_IAM_role.html,
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-connect-tls.html).
TLS_MANAGED_POLICY = ("service-role/"
                      "AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity")
# What that managed policy allows (AWS Managed Policy Reference, version 2:
# https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity.html):
# ECS keeps each service's certificate and key in a Secrets Manager secret named
# ecs-sc!..., and issues certificates from the Private CA. The permissions boundary
# (generator.stacks.bootstrap) must hold these for the role to work inside it.
TLS_MANAGED_POLICY_ACTIONS = (
    "secretsmanager:CreateSecret", "secretsmanager:TagResource",
    "secretsmanager:DescribeSecret", "secretsmanager:UpdateSecret",
    "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
    "secretsmanager:DeleteSecret", "secretsmanager:RotateSecret",
    "secretsmanager:UpdateSecretVersionStage",
    "acm-pca:GetCertificate", "acm-pca:GetCertificateAuthorityCertificate",
    "acm-pca:DescribeCertificateAuthority", "acm-pca:IssueCertificate",
)


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
    # Declared whether or not a service is public, and optional: a parameter that comes
    # and goes with the first public service would break every update that does not
    # pass it (or passes it to a template that no longer declares it).
    return Parameter(
        PUBLIC_SUBNETS,
        Type="CommaDelimitedList",
        Default="",
        AllowedPattern=r"^(subnet-[0-9a-f]{8,17})?$",
        Description=(
            "Public subnets for internet-facing load balancers, in at least two Availability "
            "Zones (an ALB refuses fewer). Empty while no service is public."
        ),
        ConstraintDescription="must be empty or subnet ids (subnet-...)",
    )


def tls_role_wanted_parameter(topology: Topology) -> Parameter:
    """Whether the cluster stack holds the Service Connect TLS infrastructure role.

    Declared whatever the topology says, so the role can outlive service_connect_tls: the
    Service Connect TLS page's infrastructure-as-code note has the role, CA and key deleted
    only after the services that use them
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-connect-tls.html).
    The deployer passes "true" while topology.yaml has service_connect_tls or a service
    stack still passes a Private CA, and "false" in a cluster update after the service
    waves (generator.ops.deploy); the Default is what the topology alone says.
    """
    return Parameter(
        names.TLS_ROLE_WANTED_PARAMETER,
        Type="String",
        AllowedValues=["true", "false"],
        Default="true" if topology.service_connect_tls else "false",
        Description=(
            "true keeps the Service Connect TLS infrastructure role. The deployer sets it "
            "while any service uses Service Connect TLS; false only once none does."
        ),
    )


def app_parameter(topology: Topology) -> Parameter:
    """Which deployment this cluster stack is: topology.yaml's app, or `<app>-<env>` of one
    of its environments. One template serves them all; only the allowed values may be
    chosen, so a console edit cannot point a cluster at another app's names."""
    apps = [deployment.app for deployment in topology.deployments]
    return Parameter(
        names.APP_PARAMETER, Type="String", AllowedValues=apps, Default=apps[0],
        Description="The app (or app-environment) whose stack names, tags and roles these "
                    "resources carry.")


def namespace_parameter(topology: Topology) -> Parameter:
    namespaces = [deployment.namespace for deployment in topology.deployments]
    return Parameter(
        NAMESPACE, Type="String", AllowedValues=namespaces, Default=namespaces[0],
        Description="The Cloud Map namespace's DNS name; callers use "
                    "http://<discovery name>.<namespace>:<port>. Changing it replaces the "
                    "namespace and every service's endpoint.")


def namespace(topology: Topology) -> servicediscovery.PrivateDnsNamespace:
    return servicediscovery.PrivateDnsNamespace(
        "Namespace",
        Name=Ref(NAMESPACE),
        Vpc=Ref(VPC),
        Description=Sub("Service Connect namespace of ${%s}" % names.APP_PARAMETER),
        Tags=Tags(app=Ref(names.APP_PARAMETER)),
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
        Tags=Tags(app=Ref(names.APP_PARAMETER)),
    )


def no_callers_security_group(topology: Topology) -> ec2.SecurityGroup:
    # Fn::ForEach (ingress.yaml) cannot iterate over an empty Callers list; a service without
    # callers lists this group instead, and since no task carries it, the rule admitting it
    # admits nobody.
    return ec2.SecurityGroup(
        "NoCallersSecurityGroup",
        # GroupDescription is create-only (AWS::EC2::SecurityGroup): the same words as
        # before it became a parameter, or every cluster's stand-in would be replaced.
        GroupDescription=Sub("${%s}: attached to no task; stands in for no callers"
                             % names.APP_PARAMETER),
        VpcId=Ref(VPC),
        SecurityGroupEgress=[ec2.SecurityGroupRule(
            IpProtocol="-1", CidrIp="127.0.0.1/32", Description="no egress")],
        Tags=Tags(Name=Sub("${%s}-no-callers" % names.APP_PARAMETER),
                  app=Ref(names.APP_PARAMETER)),
    )


def service_connect_tls_role(topology: Topology) -> iam.Role:
    """The infrastructure role ECS uses to issue and rotate Service Connect TLS
    certificates; the service stacks pass it in their ServiceConnectTlsConfiguration."""
    return iam.Role(
        TLS_ROLE,
        Condition=TLS_ROLE_KEPT,
        Path=Sub(names.role_path("${%s}" % names.APP_PARAMETER)),
        Description=Sub("${%s}: lets ECS issue Service Connect TLS certificates from the "
                        "Private CA" % names.APP_PARAMETER),
        # ECS assumes it: the trust policy of the developer guide's infrastructure role page.
        AssumeRolePolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[Statement(
            Effect=Allow,
            Principal=Principal("Service", "ecs.amazonaws.com"),
            Action=[AssumeRole],
        )]),
        ManagedPolicyArns=[Sub("arn:${AWS::Partition}:iam::aws:policy/" + TLS_MANAGED_POLICY)],
        PermissionsBoundary=ImportValue(f"{topology.bootstrap_stack_name}-"
                                        f"{names.BOUNDARY_EXPORT}"),
        **({"Policies": [only_the_topologys_ca(topology.service_connect_tls.private_ca_arn)]}
           if topology.service_connect_tls else {}),
    )


def only_the_topologys_ca(ca_arn: str) -> iam.Policy:
    """The managed policy allows its Private CA actions on any CA (Resource "*"), and the
    boundary any CA tagged AmazonECSManaged=true: this explicit deny (which beats both,
    IAM's policy evaluation logic) keeps the role to topology.yaml's CA (issue 15, path 6).
    Absent while TLS is being turned off (the role is then kept only until the services
    stop using it, and the CA is no longer in topology.yaml)."""
    return iam.Policy(
        PolicyName="OnlyTheTopologysPrivateCa",
        PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[Statement(
            Sid="NoOtherPrivateCa",
            Effect=Deny,
            Action=[Action(*action.split(":")) for action in TLS_MANAGED_POLICY_ACTIONS
                    if action.startswith("acm-pca:")],
            NotResource=[ca_arn, f"{ca_arn}/*"],
        )]),
    )


def export(name: str, value, description: str, logical_id: str | None = None) -> Output:
    return Output(
        logical_id or name,
        Description=description,
        Value=value,
        Export=Export(Sub("${AWS::StackName}-" + name)),
    )


def outputs(topology: Topology) -> list[Output]:
    tls = [Output(
        # Not exported: the deployer reads it and passes it to every service stack, so
        # turning TLS off later never meets an export still in use.
        names.TLS_ROLE_OUTPUT, Value=GetAtt(TLS_ROLE, "Arn"), Condition=TLS_ROLE_KEPT,
        Description="Service Connect TLS infrastructure role (ServiceConnectTlsRoleArn of "
                    "the service stacks)",
    )]
    return tls + [
        export(names.CLUSTER_NAME, Ref("Cluster"), "ECS cluster name"),
        export(names.CLUSTER_ARN, GetAtt("Cluster", "Arn"), "ECS cluster ARN"),
        export(names.NAMESPACE_ARN, GetAtt("Namespace", "Arn"), "Cloud Map namespace ARN"),
        export(names.NAMESPACE_ID, GetAtt("Namespace", "Id"), "Cloud Map namespace id"),
        export(names.NAMESPACE_NAME, Ref(NAMESPACE), "Cloud Map namespace DNS name"),
        export(names.VPC_ID, Ref(VPC), "VPC of the cluster"),
        Output(
            "NoCallersSecurityGroup",
            Description="Stands in for the task security group of a caller that does not exist",
            Value=GetAtt("NoCallersSecurityGroup", "GroupId"),
            # The name a service stack imports for its caller 'none' (see service.py).
            Export=Export(Sub(network_export_name("${%s}" % names.APP_PARAMETER,
                                                  names.NO_CALLERS))),
        ),
        # Not exported, so they can change: the deployer passes them to every service stack.
        Output(PRIVATE_SUBNETS, Description="Task subnets",
               Value=Join(",", Ref(PRIVATE_SUBNETS))),
        Output(PUBLIC_SUBNETS, Description="Load balancer subnets ('none' when not given)",
               Value=If(HAS_PUBLIC_SUBNETS, Join(",", Ref(PUBLIC_SUBNETS)), "none")),
    ]


def interface(topology: Topology) -> dict:
    network = [VPC, PRIVATE_SUBNETS, PUBLIC_SUBNETS]
    labels = {VPC: "VPC", PRIVATE_SUBNETS: "Task subnets", PUBLIC_SUBNETS: "Load balancer subnets",
              names.TLS_ROLE_WANTED_PARAMETER: "Keep the Service Connect TLS role",
              names.APP_PARAMETER: "App (or app-environment)", NAMESPACE: "Namespace"}
    return {
        "AWS::CloudFormation::Interface": {
            "ParameterGroups": [
                {"Label": {"default": "Deployment"},
                 "Parameters": [names.APP_PARAMETER, NAMESPACE]},
                {"Label": {"default": "Network"}, "Parameters": network},
                {"Label": {"default": "Service Connect TLS"},
                 "Parameters": [names.TLS_ROLE_WANTED_PARAMETER]},
            ],
            "ParameterLabels": {name: {"default": labels[name]} for name in labels},
        }
    }


def build(topology: Topology) -> Template:
    template = Template(
        Description=(
            f"{topology.project_app}: ECS cluster and Cloud Map namespace"
            + ("" if topology.environments else f" {topology.namespace}")
            + " (generated from topology.yaml; do not edit)"
        )
    )
    template.set_version("2010-09-09")
    template.set_metadata(interface(topology))
    template.add_parameter(app_parameter(topology))
    template.add_parameter(namespace_parameter(topology))
    template.add_parameter(vpc_parameter())
    template.add_parameter(private_subnets_parameter())
    template.add_parameter(public_subnets_parameter())
    template.add_condition(HAS_PUBLIC_SUBNETS,
                           Not(Equals(Join(",", Ref(PUBLIC_SUBNETS)), "")))
    template.add_resource(namespace(topology))
    template.add_resource(cluster(topology))
    template.add_resource(no_callers_security_group(topology))
    template.add_parameter(tls_role_wanted_parameter(topology))
    template.add_condition(TLS_ROLE_KEPT, Equals(Ref(names.TLS_ROLE_WANTED_PARAMETER), "true"))
    template.add_resource(service_connect_tls_role(topology))
    template.add_output(outputs(topology))
    return template
