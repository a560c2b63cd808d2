"""The service stack: ONE parameterized template, deployed once per service.

What differs between services arrives as parameters (templates/params/<service>.json
and the deployer's per-run values, see generator.params), so the template does not grow
with the number of services. It imports the cluster stack's exports through the
`ClusterStackName` parameter and task security groups from the network stacks.

The rules that admit the service's callers live here, one per caller, made by
`Fn::ForEach` over the `Callers` parameter (AWS::LanguageExtensions transform,
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-foreach.html).
So the rules of a callee with 55 callers cost its own stack 55 resources and no other
stack anything, and adding a caller changes exactly the stacks of its callees.
Every parameter has a description and constraints, so an operator can update a stack
from the console.
"""
from __future__ import annotations

from awacs import ecr, logs, ssmmessages
from awacs.aws import Allow, Condition, PolicyDocument, Principal, Statement, StringEquals
from awacs.sts import AssumeRole
from troposphere import (
    AWS_ACCOUNT_ID, AWS_NO_VALUE, AWS_REGION, Equals, GetAtt, If, ImportValue, Join,
    Not, Output, Parameter, Ref, Sub, Template,
)
from troposphere import applicationautoscaling as aas
from troposphere import ec2, ecs, iam
from troposphere import elasticloadbalancingv2 as elb
from troposphere.cloudformation import WaitConditionHandle
from troposphere.logs import LogGroup

from generator import fargate, names
from generator.topology import LOG_RETENTION_DAYS, Topology

CONTAINER = "app"
# Chosen together with service/gunicorn.conf.py: Envoy closes idle connections (60 s)
# before Gunicorn's keep-alive does, answers within 15 s, and a stopping task gets
# 30 s for in-flight requests before SIGKILL.
DEFAULT_PER_REQUEST_TIMEOUT = 15
DEFAULT_IDLE_TIMEOUT = 60
DEFAULT_PEER_TIMEOUT = 3
# The app refuses longer: /peers must answer well inside the per-request timeout.
MAX_PEER_TIMEOUT = 10
STOP_TIMEOUT = 30
HEALTH_CHECK_COMMAND = ["CMD", "python", "-m", "service.healthcheck"]

# Conditions
IS_PUBLIC = "PublicLoadBalancerEnabled"
EXEC_ENABLED = "ExecuteCommandEnabled"
HAS_NONCE = "DeploymentNonceGiven"
# Fn::ForEach makes one ingress rule per caller. It cannot iterate over nothing (an empty
# CommaDelimitedList is one empty item), and cfn-lint does not expand a per-item
# Condition, so a service without callers lists names.NO_CALLERS: the cluster stack's
# security group that no task carries, whose rule admits nobody.
CALLER = "Caller"
CALLER_INGRESS = "CallerIngress"
LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"

_DNS_LABEL_PATTERN = r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$"
_BOOLEAN = {"Type": "String", "AllowedValues": ["true", "false"]}


def cluster_import(export: str) -> ImportValue:
    """Import a cluster-stack export; `export` may itself use ${ServiceName}."""
    return ImportValue(Sub("${%s}-%s" % (names.CLUSTER_STACK_PARAMETER, export)))


def network_import(service) -> ImportValue:
    """Import a service's task security group from its network stack (<app>-<service>-network)."""
    return ImportValue(Sub("${%s}-%s-network-%s" % (names.APP_PARAMETER, service,
                                                     names.TASK_SECURITY_GROUP)))


def parameters(topology: Topology) -> list[Parameter]:
    fixed = [
        Parameter(
            names.APP_PARAMETER, Type="String", MaxLength=63, AllowedPattern=_DNS_LABEL_PATTERN,
            Description="The app (topology.yaml's app): prefix of every stack name, so "
                        "<app>-<service>-network holds a service's task security group.",
            ConstraintDescription="must be a DNS label: a-z, 0-9 and '-', starting with a letter",
        ),
        Parameter(
            names.CLUSTER_STACK_PARAMETER, Type="String",
            Description="Name of the cluster stack whose exports (cluster, namespace, "
                        "VPC) this service imports.",
            AllowedPattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$",
            ConstraintDescription="must be a CloudFormation stack name",
        ),
        Parameter(
            "ServiceName", Type="String", MaxLength=63, AllowedPattern=_DNS_LABEL_PATTERN,
            Description="Name of the service as in topology.yaml; also the ECS service name.",
            ConstraintDescription="must be a DNS label: a-z, 0-9 and '-', starting with a letter",
        ),
        Parameter(
            "DiscoveryName", Type="String", MaxLength=63, AllowedPattern=_DNS_LABEL_PATTERN,
            Description="Service Connect discovery name; callers use "
                        "http://<DiscoveryName>.<namespace>:<ContainerPort>. Unique per namespace.",
            ConstraintDescription="must be a DNS label: a-z, 0-9 and '-', starting with a letter",
        ),
        Parameter(
            "ContainerPort", Type="Number", MinValue=1, MaxValue=65535,
            Description="Port the container listens on; only callers' security groups may reach it.",
        ),
        Parameter(
            names.CALLERS_PARAMETER, Type="CommaDelimitedList", Default=names.NO_CALLERS,
            AllowedPattern=_DNS_LABEL_PATTERN,
            Description="Services that call this one (topology.yaml's calls), or "
                        f"'{names.NO_CALLERS}': each one's task security group may reach "
                        "ContainerPort, and nothing else may.",
            ConstraintDescription=f"must be service names (DNS labels), or {names.NO_CALLERS}",
        ),
        Parameter(
            names.SUBNETS_PARAMETER, Type="List<AWS::EC2::Subnet::Id>",
            Description="Private subnets of the tasks. Deployments pass the cluster stack's "
                        "PrivateSubnetIds; change them there.",
        ),
        Parameter(
            # No Default: deployments always pass it, and a default would be linted as a
            # subnet id the load balancer uses.
            names.LOAD_BALANCER_SUBNETS_PARAMETER, Type="CommaDelimitedList",
            AllowedPattern=r"^(subnet-[0-9a-f]{8,17})?$",
            Description="Public subnets of the internet-facing load balancer, two "
                        "Availability Zones at least. Deployments pass the cluster stack's "
                        "PublicSubnetIds; empty when PublicLoadBalancer is false.",
            ConstraintDescription="must be empty or subnet ids (subnet-...)",
        ),
        Parameter(
            names.BOUNDARY_PARAMETER, Type="String",
            AllowedPattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:policy/[A-Za-z0-9+=,.@_/-]+$",
            Description="Permissions boundary of the task and execution roles: the bootstrap "
                        "stack's PermissionsBoundaryArn. The deploy role may create roles "
                        "only with it.",
            ConstraintDescription="must be an IAM managed policy ARN",
        ),
        Parameter(
            "ImageUri", Type="String",
            AllowedPattern=r"^[a-z0-9][a-z0-9.-]*(:[0-9]+)?/[a-z0-9][a-z0-9._/-]*"
                           r"(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|@sha256:[a-f0-9]{64})$",
            Description="Container image with a tag or digest, e.g. "
                        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/demo:3f2c1ab. "
                        "The pipeline sets it from the build.",
            ConstraintDescription="must be an image reference with a tag or a digest",
        ),
        Parameter(
            "Cpu", Type="String", Default="256",
            AllowedValues=[str(cpu) for cpu in fargate.CPU_VALUES],
            Description="Fargate task CPU units (1024 = 1 vCPU); Memory must suit it.",
        ),
        Parameter(
            "Memory", Type="String", Default="512",
            AllowedValues=[str(memory) for memory in fargate.MEMORY_VALUES],
            Description="Fargate task memory in MiB; the template's rules reject pairs "
                        "Fargate does not offer.",
        ),
        Parameter(
            "DesiredCount", Type="Number", Default=1, MinValue=0, MaxValue=1000,
            Description="Tasks to run; keep it within MinCapacity..MaxCapacity. Every deploy "
                        "passes the running service's desired count, so what autoscaling or "
                        "a console edit set is kept.",
        ),
        Parameter(
            "MinCapacity", Type="Number", Default=1, MinValue=0, MaxValue=1000,
            Description="Fewest tasks target-tracking autoscaling may scale in to.",
        ),
        Parameter(
            "MaxCapacity", Type="Number", Default=1, MinValue=1, MaxValue=1000,
            Description="Most tasks target-tracking autoscaling may scale out to.",
        ),
        Parameter(
            "CpuTargetPercent", Type="Number", Default=70, MinValue=10, MaxValue=95,
            Description="Average CPU utilisation that autoscaling keeps the service at.",
        ),
        Parameter(
            "PeerUrls", Type="String", Default="", MaxLength=4096,
            AllowedPattern=r"^$|^(?:[a-z0-9-]+=)?https?://[^,\s]+(?:,(?:[a-z0-9-]+=)?https?://[^,\s]+)*$",
            Description="Comma-separated base URLs of the services this one calls "
                        "(Service Connect client aliases), passed to the app as PEER_URLS.",
            ConstraintDescription="must be empty or comma-separated http(s) URLs",
        ),
        Parameter(
            "PeerTimeoutSeconds", Type="Number", Default=DEFAULT_PEER_TIMEOUT,
            MinValue=1, MaxValue=MAX_PEER_TIMEOUT,
            Description="How long the app waits for a peer; keep it below "
                        "PerRequestTimeoutSeconds.",
        ),
        Parameter(
            "PerRequestTimeoutSeconds", Type="Number", Default=DEFAULT_PER_REQUEST_TIMEOUT,
            MinValue=1, MaxValue=3600,
            Description="Service Connect: longest time the proxy waits for a whole response.",
        ),
        Parameter(
            "IdleTimeoutSeconds", Type="Number", Default=DEFAULT_IDLE_TIMEOUT,
            MinValue=1, MaxValue=3600,
            Description="Service Connect: idle time after which the proxy closes a connection; "
                        "must stay below the app's keep-alive (75 s in gunicorn.conf.py).",
        ),
        Parameter(
            "HealthCheckPath", Type="String", Default="/healthz",
            AllowedPattern=r"^/[A-Za-z0-9._~/-]*$", MaxLength=1024,
            Description="Liveness path used by the container and load balancer health "
                        "checks; it must not call other services.",
            ConstraintDescription="must be an absolute URL path like /healthz",
        ),
        Parameter(
            "LogRetentionDays", Type="Number", Default=30,
            AllowedValues=list(LOG_RETENTION_DAYS),
            Description="Days CloudWatch Logs keeps the service's and its proxy's logs.",
        ),
        Parameter(
            "EnableExecuteCommand", Default="false", **_BOOLEAN,
            Description="Allow ECS Exec into the tasks (grants the task role the SSM "
                        "messages permissions it needs and makes the container's root "
                        "filesystem writable, as ECS Exec requires). Operator-owned: a value "
                        "set here in the console survives pipeline runs.",
        ),
        Parameter(
            "PublicLoadBalancer", Default="false", **_BOOLEAN,
            Description="Put an internet-facing Application Load Balancer in front of the "
                        "service (in the cluster's public subnets). Service-to-service calls "
                        "never use it.",
        ),
        Parameter(
            "DeploymentNonce", Type="String", Default="", MaxLength=64,
            AllowedPattern=r"^[A-Za-z0-9._-]*$",
            Description="Change it to force a new deployment with an unchanged task "
                        "definition, so the proxy relearns the namespace's endpoints. "
                        "Deployments carry it over; generator.rollout sets it.",
            ConstraintDescription="letters, digits, '.', '_' and '-' only",
        ),
    ]
    return fixed + [environment_parameter(variable) for variable in topology.environment_names]


def environment_parameter(variable: str) -> Parameter:
    return Parameter(
        names.environment_parameter(variable), Type="String", Default="", MaxLength=4096,
        Description=f"Value of the container's {variable} variable; empty leaves it unset.",
    )


def conditions(topology: Topology) -> dict:
    result = {
        IS_PUBLIC: Equals(Ref("PublicLoadBalancer"), "true"),
        EXEC_ENABLED: Equals(Ref("EnableExecuteCommand"), "true"),
        HAS_NONCE: Not(Equals(Ref("DeploymentNonce"), "")),
    }
    for variable in topology.environment_names:
        parameter = names.environment_parameter(variable)
        result[f"{parameter}Given"] = Not(Equals(Ref(parameter), ""))
    return result


def caller_ingress() -> dict:
    """The Resources entry that admits each caller's tasks on ContainerPort, and only there."""
    rule = ec2.SecurityGroupIngress(
        CALLER_INGRESS,
        GroupId=task_security_group(),
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


def load_balancer_subnets_rule() -> dict:
    return {"PublicLoadBalancerNeedsSubnets": {
        "RuleCondition": {"Fn::Equals": [{"Ref": "PublicLoadBalancer"}, "true"]},
        "Assertions": [{
            "Assert": {"Fn::Not": [{"Fn::Contains": [
                {"Ref": names.LOAD_BALANCER_SUBNETS_PARAMETER}, ""]}]},
            "AssertDescription": "A public load balancer needs LoadBalancerSubnets: give the "
                                 "cluster stack PublicSubnetIds (two Availability Zones)",
        }],
    }}


def fargate_size_rules() -> dict:
    """CloudFormation cannot validate a pair of parameters; these rules reject bad pairs at create/update."""
    rules = {}
    for cpu, memories in fargate.MEMORY_BY_CPU.items():
        rules[f"FargateMemoryForCpu{cpu}"] = {
            "RuleCondition": {"Fn::Equals": [{"Ref": "Cpu"}, str(cpu)]},
            "Assertions": [{
                "Assert": {"Fn::Contains": [[str(m) for m in memories], {"Ref": "Memory"}]},
                "AssertDescription": f"With Cpu {cpu}, Memory must be one of "
                                     f"{fargate.describe_valid_memory(cpu)} MiB",
            }],
        }
    return rules


def log_group() -> LogGroup:
    # A named group goes with its stack: a retained one would make re-creating the service
    # stack fail on the existing name. LogRetentionDays bounds what is kept meanwhile.
    return LogGroup(
        "LogGroup",
        DeletionPolicy="Delete",
        UpdateReplacePolicy="Delete",
        LogGroupName=Sub("/ecs/${%s}/${ServiceName}" % names.CLUSTER_STACK_PARAMETER),
        RetentionInDays=Ref("LogRetentionDays"),
    )


def _ecs_tasks_trust() -> PolicyDocument:
    # SourceAccount keeps another account's ECS from assuming the role (confused deputy).
    return PolicyDocument(
        Version="2012-10-17",
        Statement=[Statement(
            Effect=Allow,
            Principal=Principal("Service", "ecs-tasks.amazonaws.com"),
            Action=[AssumeRole],
            Condition=Condition(StringEquals("aws:SourceAccount", Ref(AWS_ACCOUNT_ID))),
        )],
    )


def execution_role() -> iam.Role:
    log_group_arn = GetAtt("LogGroup", "Arn")
    return iam.Role(
        "ExecutionRole",
        Description=Sub("Pulls the image and writes logs for ${ServiceName}"),
        AssumeRolePolicyDocument=_ecs_tasks_trust(),
        PermissionsBoundary=Ref(names.BOUNDARY_PARAMETER),
        Policies=[iam.Policy(
            PolicyName="pull-image-and-write-logs",
            PolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    # ecr:GetAuthorizationToken has no resource-level permissions.
                    Statement(Effect=Allow, Action=[ecr.GetAuthorizationToken], Resource=["*"]),
                    Statement(
                        Effect=Allow,
                        Action=[ecr.BatchCheckLayerAvailability, ecr.BatchGetImage,
                                ecr.GetDownloadUrlForLayer],
                        # The repository is only known as part of ImageUri; scope to the
                        # account's repositories in this region.
                        Resource=[Sub("arn:${AWS::Partition}:ecr:${AWS::Region}:"
                                      "${AWS::AccountId}:repository/*")],
                    ),
                    Statement(
                        Effect=Allow,
                        Action=[logs.CreateLogStream, logs.PutLogEvents],
                        Resource=[log_group_arn, Sub("${LogGroup.Arn}:log-stream:*")],
                    ),
                ],
            ),
        )],
    )


def task_role() -> iam.Role:
    exec_policy = iam.Policy(
        PolicyName="ecs-exec",
        PolicyDocument=PolicyDocument(
            Version="2012-10-17",
            Statement=[Statement(
                Effect=Allow,
                # ECS Exec's SSM channel actions support no resource-level permissions.
                Action=[ssmmessages.CreateControlChannel, ssmmessages.CreateDataChannel,
                        ssmmessages.OpenControlChannel, ssmmessages.OpenDataChannel],
                Resource=["*"],
            )],
        ),
    )
    return iam.Role(
        "TaskRole",
        Description=Sub("Identity of ${ServiceName}'s containers; nothing beyond ECS Exec"),
        AssumeRolePolicyDocument=_ecs_tasks_trust(),
        PermissionsBoundary=Ref(names.BOUNDARY_PARAMETER),
        Policies=[If(EXEC_ENABLED, exec_policy, Ref(AWS_NO_VALUE))],
    )


def environment(topology: Topology) -> list:
    fixed = [
        ecs.Environment(Name="SERVICE_NAME", Value=Ref("ServiceName")),
        ecs.Environment(Name="PORT", Value=Ref("ContainerPort")),
        ecs.Environment(Name="PEER_URLS", Value=Ref("PeerUrls")),
        ecs.Environment(Name="PEER_TIMEOUT_SECONDS", Value=Ref("PeerTimeoutSeconds")),
        ecs.Environment(Name="HEALTH_CHECK_PATH", Value=Ref("HealthCheckPath")),
    ]
    extra = []
    for variable in topology.environment_names:
        parameter = names.environment_parameter(variable)
        extra.append(If(
            f"{parameter}Given",
            ecs.Environment(Name=variable, Value=Ref(parameter)),
            Ref(AWS_NO_VALUE),
        ))
    return fixed + extra


def awslogs(stream_prefix: str) -> ecs.LogConfiguration:
    # Non-blocking with a 25 MiB buffer, as in the seed: a CloudWatch Logs hiccup must not
    # stall the app's stdout writes.
    return ecs.LogConfiguration(
        LogDriver="awslogs",
        Options={
            "awslogs-group": Ref("LogGroup"),
            "awslogs-region": Ref(AWS_REGION),
            "awslogs-stream-prefix": stream_prefix,
            "mode": "non-blocking",
            "max-buffer-size": "25m",
        },
    )


def task_definition(topology: Topology) -> ecs.TaskDefinition:
    container = ecs.ContainerDefinition(
        Name=CONTAINER,
        Image=Ref("ImageUri"),
        Essential=True,
        PortMappings=[ecs.PortMapping(
            Name=names.PORT_NAME,
            ContainerPort=Ref("ContainerPort"),
            Protocol="tcp",
            AppProtocol="http",
        )],
        Environment=environment(topology),
        LogConfiguration=awslogs(CONTAINER),
        HealthCheck=ecs.HealthCheck(
            Command=HEALTH_CHECK_COMMAND, Interval=10, Timeout=5, Retries=3, StartPeriod=20,
        ),
        StopTimeout=STOP_TIMEOUT,
        # Read-only unless ECS Exec is on: its agent writes into the container's filesystem
        # (aws/containers-roadmap#1359). Gunicorn keeps its worker files in /dev/shm.
        ReadonlyRootFilesystem=If(EXEC_ENABLED, False, True),
    )
    return ecs.TaskDefinition(
        "TaskDefinition",
        Family=Sub("${%s}-${ServiceName}" % names.CLUSTER_STACK_PARAMETER),
        Cpu=Ref("Cpu"),
        Memory=Ref("Memory"),
        NetworkMode="awsvpc",
        RequiresCompatibilities=["FARGATE"],
        RuntimePlatform=ecs.RuntimePlatform(
            OperatingSystemFamily="LINUX", CpuArchitecture="X86_64"
        ),
        ExecutionRoleArn=GetAtt("ExecutionRole", "Arn"),
        TaskRoleArn=GetAtt("TaskRole", "Arn"),
        ContainerDefinitions=[container],
    )


def service_connect() -> ecs.ServiceConnectConfiguration:
    return ecs.ServiceConnectConfiguration(
        Enabled=True,
        Namespace=cluster_import(names.NAMESPACE_ARN),
        Services=[ecs.ServiceConnectService(
            PortName=names.PORT_NAME,
            DiscoveryName=Ref("DiscoveryName"),
            ClientAliases=[ecs.ServiceConnectClientAlias(
                Port=Ref("ContainerPort"),
                DnsName=Sub("${DiscoveryName}.${Namespace}",
                            Namespace=cluster_import(names.NAMESPACE_NAME)),
            )],
            Timeout=ecs.TimeoutConfiguration(
                PerRequestTimeoutSeconds=Ref("PerRequestTimeoutSeconds"),
                IdleTimeoutSeconds=Ref("IdleTimeoutSeconds"),
            ),
        )],
        LogConfiguration=awslogs("service-connect"),
        AccessLogConfiguration=ecs.ServiceConnectAccessLogConfiguration(
            Format="JSON", IncludeQueryParameters="DISABLED",
        ),
    )


def task_security_group():
    return network_import("${ServiceName}")


def ecs_service() -> ecs.Service:
    return ecs.Service(
        "Service",
        # A conditional DependsOn is impossible; this handle depends on the listener
        # only when there is one.
        DependsOn=["LoadBalancerReady"],
        ServiceName=Ref("ServiceName"),
        Cluster=cluster_import(names.CLUSTER_NAME),
        TaskDefinition=Ref("TaskDefinition"),
        LaunchType="FARGATE",
        PlatformVersion="LATEST",
        DesiredCount=Ref("DesiredCount"),
        EnableExecuteCommand=If(EXEC_ENABLED, True, False),
        EnableECSManagedTags=True,
        PropagateTags="SERVICE",
        DeploymentConfiguration=ecs.DeploymentConfiguration(
            DeploymentCircuitBreaker=ecs.DeploymentCircuitBreaker(Enable=True, Rollback=True),
            MaximumPercent=200,
            MinimumHealthyPercent=100,
        ),
        NetworkConfiguration=ecs.NetworkConfiguration(
            AwsvpcConfiguration=ecs.AwsvpcConfiguration(
                AssignPublicIp="DISABLED",
                Subnets=Ref(names.SUBNETS_PARAMETER),
                SecurityGroups=[task_security_group()],
            )
        ),
        ServiceConnectConfiguration=service_connect(),
        LoadBalancers=If(IS_PUBLIC, [ecs.LoadBalancer(
            ContainerName=CONTAINER,
            ContainerPort=Ref("ContainerPort"),
            TargetGroupArn=Ref("TargetGroup"),
        )], Ref(AWS_NO_VALUE)),
        HealthCheckGracePeriodSeconds=If(IS_PUBLIC, 30, Ref(AWS_NO_VALUE)),
        ForceNewDeployment=If(HAS_NONCE, ecs.ForceNewDeployment(
            EnableForceNewDeployment=True,
            ForceNewDeploymentNonce=Ref("DeploymentNonce"),
        ), Ref(AWS_NO_VALUE)),
    )


def load_balancer_resources() -> list:
    """The optional internet-facing ALB, in every public subnet the cluster was given."""
    security_group = ec2.SecurityGroup(
        "LoadBalancerSecurityGroup",
        Condition=IS_PUBLIC,
        GroupDescription=Sub("Internet-facing load balancer of ${ServiceName}"),
        VpcId=cluster_import(names.VPC_ID),
        SecurityGroupIngress=[
            ec2.SecurityGroupRule(IpProtocol="tcp", FromPort=80, ToPort=80, CidrIp="0.0.0.0/0",
                                  Description="HTTP from the internet"),
            ec2.SecurityGroupRule(IpProtocol="tcp", FromPort=80, ToPort=80, CidrIpv6="::/0",
                                  Description="HTTP from the internet (IPv6)"),
        ],
    )
    to_tasks = ec2.SecurityGroupIngress(
        "LoadBalancerToTasksIngress",
        Condition=IS_PUBLIC,
        GroupId=task_security_group(),
        SourceSecurityGroupId=GetAtt("LoadBalancerSecurityGroup", "GroupId"),
        IpProtocol="tcp",
        FromPort=Ref("ContainerPort"),
        ToPort=Ref("ContainerPort"),
        Description="Load balancer to the container port",
    )
    load_balancer = elb.LoadBalancer(
        "LoadBalancer",
        Condition=IS_PUBLIC,
        Scheme="internet-facing",
        Type="application",
        Subnets=Ref(names.LOAD_BALANCER_SUBNETS_PARAMETER),
        SecurityGroups=[GetAtt("LoadBalancerSecurityGroup", "GroupId")],
        LoadBalancerAttributes=[
            elb.LoadBalancerAttributes(Key="routing.http.drop_invalid_header_fields.enabled",
                                       Value="true"),
        ],
    )
    target_group = elb.TargetGroup(
        "TargetGroup",
        Condition=IS_PUBLIC,
        TargetType="ip",
        Protocol="HTTP",
        Port=Ref("ContainerPort"),
        VpcId=cluster_import(names.VPC_ID),
        HealthCheckPath=Ref("HealthCheckPath"),
        HealthCheckIntervalSeconds=10,
        HealthyThresholdCount=2,
        # Shorter than the task's stop timeout, so draining ends before SIGKILL.
        TargetGroupAttributes=[
            elb.TargetGroupAttribute(Key="deregistration_delay.timeout_seconds", Value="25"),
        ],
    )
    listener = elb.Listener(
        "Listener",
        Condition=IS_PUBLIC,
        LoadBalancerArn=Ref("LoadBalancer"),
        Port=80,
        Protocol="HTTP",
        DefaultActions=[elb.Action(Type="forward", TargetGroupArn=Ref("TargetGroup"))],
    )
    ready = WaitConditionHandle(
        "LoadBalancerReady",
        Metadata={"Listener": If(IS_PUBLIC, Ref("Listener"), "")},
    )
    return [security_group, to_tasks, load_balancer, target_group, listener, ready]


def autoscaling() -> list:
    target = aas.ScalableTarget(
        "ScalableTarget",
        ServiceNamespace="ecs",
        ScalableDimension="ecs:service:DesiredCount",
        ResourceId=Join("/", ["service", cluster_import(names.CLUSTER_NAME),
                              GetAtt("Service", "Name")]),
        MinCapacity=Ref("MinCapacity"),
        MaxCapacity=Ref("MaxCapacity"),
    )
    policy = aas.ScalingPolicy(
        "CpuScalingPolicy",
        PolicyName=Sub("${ServiceName}-cpu"),
        PolicyType="TargetTrackingScaling",
        ScalingTargetId=Ref("ScalableTarget"),
        TargetTrackingScalingPolicyConfiguration=aas.TargetTrackingScalingPolicyConfiguration(
            PredefinedMetricSpecification=aas.PredefinedMetricSpecification(
                PredefinedMetricType="ECSServiceAverageCPUUtilization"
            ),
            TargetValue=Ref("CpuTargetPercent"),
            ScaleInCooldown=120,
            ScaleOutCooldown=60,
        ),
    )
    return [target, policy]


def outputs() -> list[Output]:
    return [
        Output("ServiceArn", Value=Ref("Service"), Description="ECS service ARN"),
        Output("EcsServiceName", Value=GetAtt("Service", "Name"), Description="ECS service name"),
        Output("LogGroupName", Value=Ref("LogGroup"), Description="Logs of the app and its proxy"),
        Output(
            "LoadBalancerUrl", Condition=IS_PUBLIC,
            Value=Sub("http://${LoadBalancer.DNSName}"),
            Description="Public URL of the service",
        ),
    ]


def interface(topology: Topology) -> dict:
    groups = [
        ("Service", [names.APP_PARAMETER, names.CLUSTER_STACK_PARAMETER, "ServiceName",
                     "DiscoveryName", "ContainerPort", "ImageUri"]),
        ("Network and access", [names.CALLERS_PARAMETER, names.SUBNETS_PARAMETER,
                                names.LOAD_BALANCER_SUBNETS_PARAMETER,
                                names.BOUNDARY_PARAMETER]),
        ("Size and scaling", ["Cpu", "Memory", "DesiredCount", "MinCapacity", "MaxCapacity",
                              "CpuTargetPercent"]),
        ("Service Connect", ["PeerUrls", "PeerTimeoutSeconds", "PerRequestTimeoutSeconds",
                             "IdleTimeoutSeconds"]),
        ("Operations", ["HealthCheckPath", "LogRetentionDays", "EnableExecuteCommand",
                        "PublicLoadBalancer", "DeploymentNonce"]),
    ]
    environment_names = topology.environment_names
    if environment_names:
        groups.append(("Extra environment",
                       [names.environment_parameter(v) for v in environment_names]))
    labels = {
        names.APP_PARAMETER: "App", names.CALLERS_PARAMETER: "Callers",
        names.SUBNETS_PARAMETER: "Task subnets",
        names.LOAD_BALANCER_SUBNETS_PARAMETER: "Load balancer subnets",
        names.BOUNDARY_PARAMETER: "Permissions boundary",
        names.CLUSTER_STACK_PARAMETER: "Cluster stack", "ServiceName": "Service name",
        "DiscoveryName": "Discovery name", "ContainerPort": "Container port",
        "ImageUri": "Image", "Cpu": "CPU units", "Memory": "Memory (MiB)",
        "DesiredCount": "Desired tasks", "MinCapacity": "Minimum tasks",
        "MaxCapacity": "Maximum tasks", "CpuTargetPercent": "Target CPU %",
        "PeerUrls": "Callee URLs", "PeerTimeoutSeconds": "Peer timeout (s)",
        "PerRequestTimeoutSeconds": "Per-request timeout (s)",
        "IdleTimeoutSeconds": "Idle timeout (s)", "HealthCheckPath": "Health check path",
        "LogRetentionDays": "Log retention (days)", "EnableExecuteCommand": "ECS Exec",
        "PublicLoadBalancer": "Public load balancer", "DeploymentNonce": "Deployment nonce",
    }
    labels.update({names.environment_parameter(v): v for v in environment_names})
    return {
        "AWS::CloudFormation::Interface": {
            "ParameterGroups": [
                {"Label": {"default": label}, "Parameters": members} for label, members in groups
            ],
            "ParameterLabels": {name: {"default": text} for name, text in labels.items()},
        }
    }


def build(topology: Topology) -> Template:
    template = Template(
        Description="One ECS Fargate service with Service Connect, deployed once per service "
                    "(generated from topology.yaml; do not edit)"
    )
    template.set_version("2010-09-09")
    template.set_transform(LANGUAGE_EXTENSIONS)
    template.set_metadata(interface(topology))
    template.add_parameter(parameters(topology))
    for name, condition in conditions(topology).items():
        template.add_condition(name, condition)
    for name, rule in {**fargate_size_rules(), **load_balancer_subnets_rule()}.items():
        template.add_rule(name, rule)
    for resource in (
        log_group(), execution_role(), task_role(), task_definition(topology), ecs_service(),
        *load_balancer_resources(), *autoscaling(),
    ):
        template.add_resource(resource)
    template.resources.update(caller_ingress())
    template.add_output(outputs())
    return template
