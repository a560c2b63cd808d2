"""The service stack: ONE parameterized template, deployed once per service.

What differs between services arrives as parameters (templates/params/<service>.json
and the deployer's per-run values, see generator.params), so the template does not grow
with the number of services. It imports the cluster stack's exports through the
`ClusterStackName` parameter and task security groups from the network stacks.

The rules that admit the service's callers are not here: they are in the service's
ingress stack (generator.stacks.ingress), so this template has no transform and an
operator's console update with "Use current template" applies every value changed.
Every parameter has a description and constraints, so an operator can update a stack
from the console.
"""
from __future__ import annotations

from awacs import ecr, logs, ssmmessages
from awacs.aws import Allow, Condition, PolicyDocument, Principal, Statement, StringEquals
from awacs.sts import AssumeRole
from troposphere import (
    AWS_ACCOUNT_ID, AWS_NO_VALUE, AWS_REGION, And, Equals, GetAtt, If, ImportValue, Join,
    Not, Or, Output, Parameter, Ref, Select, Split, Sub, Template,
)
from troposphere import Condition as ConditionRef
from troposphere import applicationautoscaling as aas
from troposphere import ec2, ecs, iam
from troposphere import elasticloadbalancingv2 as elb
from troposphere.cloudformation import WaitConditionHandle
from troposphere.logs import LogGroup

from generator import fargate, names
from generator.stacks import alarms
from generator.topology import (
    CERTIFICATE_ARN_PATTERN, DEFAULT_HEALTH_CHECK_COMMAND, IMAGE_REFERENCE_PATTERN,
    KMS_KEY_ARN_PATTERN, LOG_RETENTION_DAYS, MAX_IMAGE_REFERENCE, PRIVATE_CA_ARN_PATTERN,
    SECRETSMANAGER_ARN_PATTERN, SSM_PARAMETER_ARN_PATTERN, Topology,
)

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
HEALTH_CHECK_COMMAND = list(DEFAULT_HEALTH_CHECK_COMMAND)
# The TLS 1.3 policy of the HTTPS listener (TLS 1.3 and 1.2, no older):
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html
HTTPS_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# Service Connect TLS: ECS issues each service's certificates from the Private CA, with
# the cluster stack's infrastructure role (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-connect-tls.html,
# AWS::ECS::Service ServiceConnectTlsConfiguration:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-ecs-service-serviceconnecttlsconfiguration.html).

# Conditions
IS_PUBLIC = "PublicLoadBalancerEnabled"
EXEC_ENABLED = "ExecuteCommandEnabled"
HAS_NONCE = "DeploymentNonceGiven"
HAS_HEALTH_CHECK = "HealthCheckCommandGiven"
WRITABLE_ROOT = "RootFilesystemWritable"
HAS_CERTIFICATE = "HttpsEnabled"
HAS_PULL_REPOSITORY = "PullRepositoryGiven"
HAS_SECRETS_KEY = "SecretsKmsKeyGiven"
TLS_ENABLED = "ServiceConnectTlsEnabled"
HAS_TLS_ROLE = "ServiceConnectTlsRoleGiven"
TLS_BEHIND_LOAD_BALANCER = "ServiceConnectTlsBehindLoadBalancer"
ANY_SECRETS_MANAGER = "AnySecretsManagerSecret"
ANY_SSM_PARAMETER = "AnySsmParameter"
ANY_SECRET = "AnySecret"
SCALES = "ServiceScales"
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
            Description="Port the container listens on. The service's ingress stack admits "
                        "its callers on this port only: change it in topology.yaml.",
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
            "ImageUri", Type="String", MaxLength=MAX_IMAGE_REFERENCE,
            AllowedPattern=IMAGE_REFERENCE_PATTERN,
            Description="Container image: any reference, e.g. nginx:1.27, "
                        "public.ecr.aws/nginx/nginx:1.27 or "
                        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/demo/service:3f2c1ab. "
                        "The pipeline sets it from the build or the topology's image.",
            ConstraintDescription="must be an image reference: [registry/]repository[:tag]"
                                  "[@digest]",
        ),
        Parameter(
            "PullRepositoryArn", Type="String", Default="",
            AllowedPattern=r"^$|^arn:aws[a-z-]*:ecr:[a-z0-9-]+:[0-9]{12}:repository/[a-z0-9._/-]+$",
            Description="A private ECR repository outside the pipeline's that ImageUri is in "
                        "(topology.yaml's image); the execution role may pull from it and from "
                        "the pipeline's repository only. Empty for none.",
            ConstraintDescription="must be empty or an ECR repository ARN",
        ),
        Parameter(
            "HealthCheckCommand", Type="CommaDelimitedList", Default="",
            # Each item (CloudFormation applies a list's pattern per item); topology.yaml
            # checks that the first is CMD or CMD-SHELL.
            AllowedPattern=r"^.{0,1024}$",
            Description="The container's health check command, CMD or CMD-SHELL first "
                        "(topology.yaml's health_check_command; the default app's is "
                        "CMD,python,-m,service.healthcheck). Empty: no container health "
                        "check.",
        ),
        Parameter(
            "ReadonlyRootFilesystem", Default="true", **_BOOLEAN,
            Description="Mount the container's root filesystem read-only (ECS Exec makes it "
                        "writable whatever this says). Images that write outside /tmp-like "
                        "volumes, such as nginx, need false.",
        ),
        Parameter(
            "CertificateArn", Type="String", Default="",
            AllowedPattern=f"^$|{CERTIFICATE_ARN_PATTERN}",
            Description="ACM certificate of the public load balancer: HTTPS on 443 with "
                        f"{HTTPS_SSL_POLICY}, and port 80 redirects to it. Empty: HTTP only.",
            ConstraintDescription="must be empty or an ACM certificate ARN",
        ),
        Parameter(
            names.TLS_CA_PARAMETER, Type="String", Default="",
            AllowedPattern=f"^$|{PRIVATE_CA_ARN_PATTERN}",
            Description="AWS Private CA that issues Service Connect TLS certificates "
                        "(topology.yaml's service_connect_tls). Empty: plain HTTP between "
                        "services.",
            ConstraintDescription="must be empty or an AWS Private CA ARN",
        ),
        Parameter(
            names.TLS_ROLE_PARAMETER, Type="String", Default="",
            AllowedPattern=r"^$|^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$",
            Description="The cluster stack's Service Connect TLS infrastructure role "
                        "(its ServiceConnectTlsRoleArn output); deployments pass it.",
            ConstraintDescription="must be empty or an IAM role ARN",
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
            Description="Tasks to run when MinCapacity equals MaxCapacity. When they "
                        "differ the service scales and this is not used: autoscaling owns "
                        "the count, MinCapacity is its floor.",
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
    # The key is declared only with secrets: nothing else would use it (cfn-lint W2001).
    secrets = ([secrets_kms_key_parameter()] if topology.secret_names else []) + [
        secret_parameter(variable) for variable in topology.secret_names]
    return (fixed + alarms.service_parameters()
            + [environment_parameter(variable) for variable in topology.environment_names]
            + secrets)


def secrets_kms_key_parameter() -> Parameter:
    return Parameter(
        "SecretsKmsKeyArn", Type="String", Default="",
        AllowedPattern=f"^$|{KMS_KEY_ARN_PATTERN}",
        Description="Customer managed KMS key that encrypts the secrets; the execution "
                    "role may decrypt with it. Empty: the secrets use AWS managed keys.",
        ConstraintDescription="must be empty or a KMS key ARN",
    )


def secret_parameter(variable: str) -> Parameter:
    return Parameter(
        names.secret_parameter(variable), Type="String", Default="",
        AllowedPattern=f"^$|{SECRETSMANAGER_ARN_PATTERN}|{SSM_PARAMETER_ARN_PATTERN}",
        Description=f"Secrets Manager secret or SSM parameter ARN whose value becomes the "
                    f"container's {variable} variable; empty leaves it unset. Only the ARN "
                    "is here, never the value.",
        ConstraintDescription="must be empty, a Secrets Manager secret ARN or an SSM "
                              "parameter ARN",
    )


def _secret_service(variable: str):
    """The ARN's service (secretsmanager or ssm), "" when the slot is empty: the 3rd field
    of arn:partition:service:... ; the padding keeps Select in range for an empty value."""
    return Select(2, Split(":", Join("", [Ref(names.secret_parameter(variable)), ":::"])))


def _any(conditions: list[str]):
    """Fn::Or over named conditions (2 to 10 per Fn::Or, so nested for more)."""
    refs = [ConditionRef(name) for name in conditions]
    while len(refs) > 10:
        refs = [Or(*refs[i:i + 10]) if len(refs[i:i + 10]) > 1 else refs[i]
                for i in range(0, len(refs), 10)]
    return Or(*refs) if len(refs) > 1 else refs[0]


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
        SCALES: Not(Equals(Ref("MinCapacity"), Ref("MaxCapacity"))),
    }
    for variable in topology.environment_names:
        parameter = names.environment_parameter(variable)
        result[f"{parameter}Given"] = Not(Equals(Ref(parameter), ""))
    result.update({
        HAS_HEALTH_CHECK: Not(Equals(Join(",", Ref("HealthCheckCommand")), "")),
        WRITABLE_ROOT: Or(ConditionRef(EXEC_ENABLED),
                          Equals(Ref("ReadonlyRootFilesystem"), "false")),
        HAS_CERTIFICATE: And(ConditionRef(IS_PUBLIC), Not(Equals(Ref("CertificateArn"), ""))),
        HAS_PULL_REPOSITORY: Not(Equals(Ref("PullRepositoryArn"), "")),
        TLS_ENABLED: Not(Equals(Ref(names.TLS_CA_PARAMETER), "")),
        HAS_TLS_ROLE: Not(Equals(Ref(names.TLS_ROLE_PARAMETER), "")),
        TLS_BEHIND_LOAD_BALANCER: And(ConditionRef(IS_PUBLIC), ConditionRef(TLS_ENABLED)),
    })
    secrets_manager, ssm = [], []
    for variable in topology.secret_names:
        parameter = names.secret_parameter(variable)
        result[f"{parameter}Given"] = Not(Equals(Ref(parameter), ""))
        result[f"{parameter}InSecretsManager"] = Equals(_secret_service(variable),
                                                        "secretsmanager")
        result[f"{parameter}InSsm"] = Equals(_secret_service(variable), "ssm")
        secrets_manager.append(f"{parameter}InSecretsManager")
        ssm.append(f"{parameter}InSsm")
    if topology.secret_names:
        result[HAS_SECRETS_KEY] = Not(Equals(Ref("SecretsKmsKeyArn"), ""))
        result[ANY_SECRETS_MANAGER] = _any(secrets_manager)
        result[ANY_SSM_PARAMETER] = _any(ssm)
        result[ANY_SECRET] = Or(ConditionRef(ANY_SECRETS_MANAGER),
                                ConditionRef(ANY_SSM_PARAMETER))
    return result


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


def tls_and_https_rules() -> dict:
    return {
        "ServiceConnectTlsNeedsTheRole": {
            "RuleCondition": {"Fn::Not": [{"Fn::Equals": [
                {"Ref": names.TLS_CA_PARAMETER}, ""]}]},
            "Assertions": [{
                "Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": names.TLS_ROLE_PARAMETER}, ""]}]},
                "AssertDescription": "Service Connect TLS needs ServiceConnectTlsRoleArn: the "
                                     "cluster stack's ServiceConnectTlsRoleArn output",
            }],
        },
        "CertificateNeedsAPublicLoadBalancer": {
            "RuleCondition": {"Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]},
            "Assertions": [{
                "Assert": {"Fn::Equals": [{"Ref": "PublicLoadBalancer"}, "true"]},
                "AssertDescription": "CertificateArn is for the public load balancer: set "
                                     "PublicLoadBalancer to true, or CertificateArn to empty",
            }],
        },
    }


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


def pipeline_repository_arn() -> Sub:
    """The pipeline's image repository (pipeline.stack, <app>/service-<stack id piece>),
    and its predecessors that a recreated pipeline stack retained."""
    return Sub("arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/"
               + names.IMAGE_REPOSITORY.format(app="${%s}" % names.APP_PARAMETER) + "*")


def secrets_policy(topology: Topology):
    """Read exactly the secrets this service names: GetSecretValue on its Secrets Manager
    ARNs, GetParameters on its SSM parameter ARNs, kms:Decrypt only with a named key
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html,
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-ssm-paramstore.html).
    Each statement lists only the non-empty slots of its kind, and is left out when none."""
    if not topology.secret_names:
        return None

    def resources(kind: str) -> list:
        return [If(f"{names.secret_parameter(v)}{kind}", Ref(names.secret_parameter(v)),
                   Ref(AWS_NO_VALUE)) for v in topology.secret_names]

    statements = [
        If(ANY_SECRETS_MANAGER, {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
                                 "Resource": resources("InSecretsManager")}, Ref(AWS_NO_VALUE)),
        If(ANY_SSM_PARAMETER, {"Effect": "Allow", "Action": ["ssm:GetParameters"],
                               "Resource": resources("InSsm")}, Ref(AWS_NO_VALUE)),
        # Only through Secrets Manager and SSM, which decrypt for ECS when it reads the
        # secrets (kms:ViaService,
        # https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
        If(HAS_SECRETS_KEY, {"Effect": "Allow", "Action": ["kms:Decrypt"],
                             "Resource": [Ref("SecretsKmsKeyArn")],
                             "Condition": {"StringLike": {"kms:ViaService": [
                                 "secretsmanager.*.amazonaws.com", "ssm.*.amazonaws.com"]}}},
           Ref(AWS_NO_VALUE)),
    ]
    return If(ANY_SECRET, iam.Policy(
        PolicyName="read-secrets",
        PolicyDocument={"Version": "2012-10-17", "Statement": statements},
    ), Ref(AWS_NO_VALUE))


def execution_role(topology: Topology) -> iam.Role:
    log_group_arn = GetAtt("LogGroup", "Arn")
    return iam.Role(
        "ExecutionRole",
        Description=Sub("Pulls the image, reads the secrets and writes logs for "
                        "${ServiceName}"),
        AssumeRolePolicyDocument=_ecs_tasks_trust(),
        Path=Sub(names.role_path("${%s}" % names.APP_PARAMETER)),
        PermissionsBoundary=Ref(names.BOUNDARY_PARAMETER),
        Policies=[policy for policy in (secrets_policy(topology), iam.Policy(
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
                        # The pipeline's repository, and the one topology.yaml's image
                        # names, if it is a private ECR repository; nothing else.
                        Resource=[pipeline_repository_arn(),
                                  If(HAS_PULL_REPOSITORY, Ref("PullRepositoryArn"),
                                     Ref(AWS_NO_VALUE))],
                    ),
                    Statement(
                        Effect=Allow,
                        Action=[logs.CreateLogStream, logs.PutLogEvents],
                        Resource=[log_group_arn, Sub("${LogGroup.Arn}:log-stream:*")],
                    ),
                ],
            ),
        )) if policy is not None],
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
        Path=Sub(names.role_path("${%s}" % names.APP_PARAMETER)),
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


def secrets(topology: Topology) -> list:
    return [If(f"{names.secret_parameter(v)}Given",
               ecs.Secret(Name=v, ValueFrom=Ref(names.secret_parameter(v))),
               Ref(AWS_NO_VALUE))
            for v in topology.secret_names]


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
        Secrets=secrets(topology) or Ref(AWS_NO_VALUE),
        LogConfiguration=awslogs(CONTAINER),
        # The default app's image alone has service.healthcheck; another image gets the
        # topology's health_check_command, or no container health check.
        HealthCheck=If(HAS_HEALTH_CHECK, ecs.HealthCheck(
            Command=Ref("HealthCheckCommand"), Interval=10, Timeout=5, Retries=3,
            StartPeriod=20,
        ), Ref(AWS_NO_VALUE)),
        StopTimeout=STOP_TIMEOUT,
        # Read-only unless ECS Exec is on (its agent writes into the container's filesystem,
        # aws/containers-roadmap#1359) or the image needs to write (ReadonlyRootFilesystem).
        # Gunicorn keeps its worker files in /dev/shm.
        ReadonlyRootFilesystem=If(WRITABLE_ROOT, False, True),
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
            Tls=If(TLS_ENABLED, ecs.ServiceConnectTlsConfiguration(
                IssuerCertificateAuthority=ecs.ServiceConnectTlsCertificateAuthority(
                    AwsPcaAuthorityArn=Ref(names.TLS_CA_PARAMETER)),
                # Given whenever TLS is on (rule ServiceConnectTlsNeedsTheRole); the
                # condition tells cfn-lint that the empty default is never used here.
                RoleArn=If(HAS_TLS_ROLE, Ref(names.TLS_ROLE_PARAMETER), Ref(AWS_NO_VALUE)),
            ), Ref(AWS_NO_VALUE)),
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
        # A service that scales leaves its count to autoscaling: "For existing services,
        # if a desired count is not specified, it is omitted from the operation", so no
        # update (the deployer's or a console one) resets it; "for new services ... a
        # default value of 1 is used" (AWS::ECS::Service DesiredCount,
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ecs-service.html#cfn-ecs-service-desiredcount),
        # and registering the scalable target "changes the resource's current capacity to
        # a value that is inside of this range" (Application Auto Scaling
        # RegisterScalableTarget), so MinCapacity is the floor.
        DesiredCount=If(SCALES, Ref(AWS_NO_VALUE), Ref("DesiredCount")),
        EnableExecuteCommand=If(EXEC_ENABLED, True, False),
        EnableECSManagedTags=True,
        PropagateTags="SERVICE",
        DeploymentConfiguration=ecs.DeploymentConfiguration(
            DeploymentCircuitBreaker=ecs.DeploymentCircuitBreaker(Enable=True, Rollback=True),
            Alarms=alarms.deployment_alarms(),
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


def target_protocol() -> If:
    """HTTPS to the tasks when Service Connect TLS is on, HTTP otherwise.

    With TLS the Service Connect proxy owns the task's Service Connect port and speaks
    only TLS 1.3, so the load balancer must too. service-connect-tls.html, "Service Connect
    and Application Load Balancer health checks": "You can use Service Connect with
    Application Load Balancer health checks and TLS 1.3 encryption", with an HTTPS target
    group whose health check goes to the Service Connect port
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-connect-tls.html).
    That port is the container port here: no IngressPortOverride, and "In awsvpc mode and
    Fargate, the default value is the container port number"
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceConnectService.html).
    Protocol is create-only (AWS::ElasticLoadBalancingV2::TargetGroup schema in cfn-lint):
    turning TLS on replaces the target group, which is safe because it has no Name; the
    listeners and the service follow the new ARN in dependency order.
    """
    return If(TLS_BEHIND_LOAD_BALANCER, "HTTPS", "HTTP")


def load_balancer_resources() -> list:
    """The optional internet-facing ALB, in every public subnet the cluster was given."""
    security_group = ec2.SecurityGroup(
        "LoadBalancerSecurityGroup",
        Condition=IS_PUBLIC,
        GroupDescription=Sub("Internet-facing load balancer of ${ServiceName}"),
        VpcId=cluster_import(names.VPC_ID),
        # 80 always (HTTP, or the redirect to HTTPS), 443 only with a certificate.
        SecurityGroupIngress=[
            ec2.SecurityGroupRule(IpProtocol="tcp", FromPort=80, ToPort=80, CidrIp="0.0.0.0/0",
                                  Description="HTTP from the internet"),
            ec2.SecurityGroupRule(IpProtocol="tcp", FromPort=80, ToPort=80, CidrIpv6="::/0",
                                  Description="HTTP from the internet (IPv6)"),
            If(HAS_CERTIFICATE, ec2.SecurityGroupRule(
                IpProtocol="tcp", FromPort=443, ToPort=443, CidrIp="0.0.0.0/0",
                Description="HTTPS from the internet"), Ref(AWS_NO_VALUE)),
            If(HAS_CERTIFICATE, ec2.SecurityGroupRule(
                IpProtocol="tcp", FromPort=443, ToPort=443, CidrIpv6="::/0",
                Description="HTTPS from the internet (IPv6)"), Ref(AWS_NO_VALUE)),
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
        Protocol=target_protocol(),
        Port=Ref("ContainerPort"),
        VpcId=cluster_import(names.VPC_ID),
        HealthCheckProtocol=target_protocol(),
        HealthCheckPort=If(TLS_BEHIND_LOAD_BALANCER, Ref("ContainerPort"), "traffic-port"),
        HealthCheckPath=Ref("HealthCheckPath"),
        HealthCheckIntervalSeconds=10,
        HealthyThresholdCount=2,
        # Shorter than the task's stop timeout, so draining ends before SIGKILL.
        TargetGroupAttributes=[
            elb.TargetGroupAttribute(Key="deregistration_delay.timeout_seconds", Value="25"),
        ],
    )
    forward = elb.Action(Type="forward", TargetGroupArn=Ref("TargetGroup"))
    # With a certificate, port 80 only redirects to HTTPS (a permanent redirect keeping
    # host, path and query: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html#redirect-actions).
    redirect = elb.Action(Type="redirect", RedirectConfig=elb.RedirectConfig(
        Protocol="HTTPS", Port="443", StatusCode="HTTP_301"))
    listener = elb.Listener(
        "Listener",
        Condition=IS_PUBLIC,
        LoadBalancerArn=Ref("LoadBalancer"),
        Port=80,
        Protocol="HTTP",
        DefaultActions=[If(HAS_CERTIFICATE, redirect, forward)],
    )
    https_listener = elb.Listener(
        "HttpsListener",
        Condition=HAS_CERTIFICATE,
        LoadBalancerArn=Ref("LoadBalancer"),
        Port=443,
        Protocol="HTTPS",
        SslPolicy=HTTPS_SSL_POLICY,
        Certificates=[elb.Certificate(CertificateArn=Ref("CertificateArn"))],
        DefaultActions=[forward],
    )
    ready = WaitConditionHandle(
        "LoadBalancerReady",
        Metadata={"Listener": If(IS_PUBLIC, Ref("Listener"), ""),
                  "HttpsListener": If(HAS_CERTIFICATE, Ref("HttpsListener"), "")},
    )
    return [security_group, to_tasks, load_balancer, target_group, listener, https_listener,
            ready]


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
            Value=If(HAS_CERTIFICATE, Sub("https://${LoadBalancer.DNSName}"),
                     Sub("http://${LoadBalancer.DNSName}")),
            Description="Public URL of the service",
        ),
    ]


def interface(topology: Topology) -> dict:
    groups = [
        ("Service", [names.APP_PARAMETER, names.CLUSTER_STACK_PARAMETER, "ServiceName",
                     "DiscoveryName", "ContainerPort", "ImageUri", "PullRepositoryArn",
                     "HealthCheckCommand", "ReadonlyRootFilesystem"]),
        ("TLS and secrets", ["CertificateArn", names.TLS_CA_PARAMETER,
                             names.TLS_ROLE_PARAMETER]
         + (["SecretsKmsKeyArn"] if topology.secret_names else [])),
        ("Network and access", [names.SUBNETS_PARAMETER,
                                names.LOAD_BALANCER_SUBNETS_PARAMETER,
                                names.BOUNDARY_PARAMETER]),
        ("Size and scaling", ["Cpu", "Memory", "DesiredCount", "MinCapacity", "MaxCapacity",
                              "CpuTargetPercent"]),
        ("Service Connect", ["PeerUrls", "PeerTimeoutSeconds", "PerRequestTimeoutSeconds",
                             "IdleTimeoutSeconds"]),
        ("Operations", ["HealthCheckPath", "LogRetentionDays", "EnableExecuteCommand",
                        "PublicLoadBalancer", "DeploymentNonce"]),
        ("Alarms", [alarms.ERROR_RATE, alarms.MINIMUM_REQUESTS, alarms.LATENCY,
                    alarms.PERCENTILE, alarms.EVALUATION, alarms.ROLLBACK]),
    ]
    environment_names = topology.environment_names
    if environment_names:
        groups.append(("Extra environment",
                       [names.environment_parameter(v) for v in environment_names]))
    if topology.secret_names:
        groups.append(("Secrets (ARNs)",
                       [names.secret_parameter(v) for v in topology.secret_names]))
    labels = {
        names.APP_PARAMETER: "App",
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
        "PullRepositoryArn": "Other ECR repository", "HealthCheckCommand": "Health check "
        "command", "ReadonlyRootFilesystem": "Read-only root filesystem",
        "CertificateArn": "HTTPS certificate", names.TLS_CA_PARAMETER: "Service Connect TLS CA",
        names.TLS_ROLE_PARAMETER: "Service Connect TLS role",
        alarms.ERROR_RATE: "5xx rate alarm (%)", alarms.MINIMUM_REQUESTS:
        "Minimum requests a minute", alarms.LATENCY: "Latency alarm (ms)",
        alarms.PERCENTILE: "Latency percentile", alarms.EVALUATION: "Breaching minutes",
        alarms.ROLLBACK: "Roll back on alarm",
    }
    if topology.secret_names:
        labels["SecretsKmsKeyArn"] = "Secrets KMS key"
    labels.update({names.environment_parameter(v): v for v in environment_names})
    labels.update({names.secret_parameter(v): v for v in topology.secret_names})
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
    template.set_metadata(interface(topology))
    template.add_parameter(parameters(topology))
    for name, condition in {**conditions(topology), **alarms.service_conditions()}.items():
        template.add_condition(name, condition)
    for name, rule in {**fargate_size_rules(), **load_balancer_subnets_rule(),
                       **tls_and_https_rules()}.items():
        template.add_rule(name, rule)
    for resource in (
        log_group(), execution_role(topology), task_role(), task_definition(topology), ecs_service(),
        *load_balancer_resources(), *autoscaling(),
        *alarms.service_alarms(),
    ):
        template.add_resource(resource)
    template.add_output(outputs())
    return template
