"""Names shared by the cluster stack, the service stack, the pipeline and the boto3 commands.

An export written by the cluster or a network stack is imported by name in the service
stack; keeping both spellings here is what keeps them from drifting apart.
"""
CLUSTER_NAME = "ClusterName"
CLUSTER_ARN = "ClusterArn"
NAMESPACE_ARN = "NamespaceArn"
NAMESPACE_ID = "NamespaceId"
NAMESPACE_NAME = "NamespaceName"
# The cluster template's parameter: which namespace (each environment has its own).
NAMESPACE_PARAMETER = "NamespaceDnsName"
VPC_ID = "VpcId"
PRIVATE_SUBNETS = "PrivateSubnetIds"
PUBLIC_SUBNETS = "PublicSubnetIds"

# The service template's parameter that names the cluster stack whose exports it imports.
CLUSTER_STACK_PARAMETER = "ClusterStackName"
# The port mapping's Name; Service Connect refers to the container port by it.
PORT_NAME = "http"


# The network stack's export of the task security group: "<network stack>-<this>".
TASK_SECURITY_GROUP = "TaskSecurityGroupId"
# What Callers lists for a service that no service calls; a service may not be named so.
NO_CALLERS = "none"
# Parameters of the service template that the deployer fills in per run (see
# generator.params for every parameter's owner).
APP_PARAMETER = "AppName"
CALLERS_PARAMETER = "Callers"
CALLEES_PARAMETER = "Callees"
# What Callees lists for a service that calls none: the NO_CALLERS group, on a port.
NO_CALLEES = f"1:{NO_CALLERS}"
SUBNETS_PARAMETER = "Subnets"
LOAD_BALANCER_SUBNETS_PARAMETER = "LoadBalancerSubnets"
BOUNDARY_PARAMETER = "PermissionsBoundaryArn"
# Exports of the bootstrap stack ("<app>-bootstrap-<name>").
DEPLOY_ROLE_EXPORT = "DeployRoleArn"
BOUNDARY_EXPORT = "PermissionsBoundaryArn"
TEMPLATE_BUCKET_EXPORT = "TemplateBucketName"


# The Service Connect TLS infrastructure role: created by the cluster stack (an output, not
# an export, so that turning TLS off never meets an export in use); the deployer reads it
# from the cluster stack and passes it to every service stack.
TLS_ROLE_OUTPUT = "ServiceConnectTlsRoleArn"
TLS_ROLE_PARAMETER = "ServiceConnectTlsRoleArn"
TLS_CA_PARAMETER = "ServiceConnectTlsCaArn"
# The cluster parameter that keeps the role: "true" while topology.yaml has
# service_connect_tls or any service stack still uses TLS, so that turning TLS off removes
# the role only in a cluster update after the service stacks stopped using it.
TLS_ROLE_WANTED_PARAMETER = "ServiceConnectTlsRoleWanted"

# Parameters that a params file leaves out: the pipeline (or `deploy`) supplies them per run.
DEPLOY_TIME_PARAMETERS = ("ImageUri", "DeploymentNonce", SUBNETS_PARAMETER,
                          LOAD_BALANCER_SUBNETS_PARAMETER, BOUNDARY_PARAMETER,
                          TLS_ROLE_PARAMETER)

# The pipeline's one image repository (pipeline.stack): every image the pipeline builds is
# pushed there, the default app's under the commit, a `build` directory's under
# "<directory slug>-<commit>". Its name is this prefix plus a piece of the pipeline stack's
# id (STACK_INSTANCE_SUFFIX): the repository is retained when the stack goes, and a
# recreated stack must not collide with it.
IMAGE_REPOSITORY = "{app}/service-"


def image_repository(app: str) -> str:
    """The repository's name up to the per-stack suffix; "*" after it matches every one."""
    return IMAGE_REPOSITORY.format(app=app)


def stack_instance_suffix():
    """The first group of the stack id's UUID (arn:...:stack/<name>/<uuid>): differs between
    a stack and the one recreated under its name, so a retained resource named with it never
    meets AlreadyExists. Lowercase hex, valid in every name that takes it here."""
    from troposphere import Ref, Select, Split

    return Select(0, Split("-", Select(2, Split("/", Ref("AWS::StackId")))))


def role_path(app: str) -> str:
    """The IAM path of every role the app's stacks create: role/<app>/<name>, so that a
    grant on role/<app>/* cannot reach the roles of an app whose name extends this one's
    (role/<app>-* would match <app>-prod's), https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-friendly-names."""
    return f"/{app}/"


def environment_parameter(variable: str) -> str:
    """Parameter logical id for an extra environment variable: LOG_LEVEL -> EnvLogLevel."""
    return "Env" + "".join(part.capitalize() for part in variable.split("_"))


def secret_parameter(variable: str) -> str:
    """Parameter logical id for a container secret: DB_PASSWORD -> SecretDbPassword."""
    return "Secret" + "".join(part.capitalize() for part in variable.split("_"))


def environment_deployer_role(project: str) -> str:
    """The role, in an environment's account, that the pipeline account's deploy step assumes
    to deploy there (created by that account's bootstrap stack, `bootstrap --env NAME
    --trust <pipeline account>`). Named, so the pipeline can name it in its own policy."""
    return f"{project}-environment-deployer"


def environment_deployer_role_arn(project: str, account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:role{role_path(project)}{environment_deployer_role(project)}"


def environment_reader_role(project: str) -> str:
    """The read-only role, in an environment's account, that the pipeline account's Build
    step (check-upgrade without a baseline) and Verify step assume there."""
    return f"{project}-environment-reader"


def environment_reader_role_arn(project: str, account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:role{role_path(project)}{environment_reader_role(project)}"


# --- alarms (issue 17) -------------------------------------------------------------------
# A service's own alarms, in its service stack, and its deployment's rollback alarms:
# <app>-<service>-5xx-rate (5xx responses over requests, Service Connect's DiscoveryName
# metrics: what every caller got) and <app>-<service>-latency (TargetResponseTime, the
# topology's percentile). An edge's alarm, in the callee's ingress stack: the caller's
# view of it (ServiceName=<caller>, TargetDiscoveryName=<callee's discovery name>),
# <app>-<caller>-to-<callee>-5xx-rate. <app> is an environment's app (<app>-<env>), so
# the name says app, environment, caller and callee.
SERVICE_ALARM_KINDS = ("5xx-rate", "latency")
EDGE_ALARM_KINDS = ("5xx-rate",)


def service_alarm_name(app: str, service: str, kind: str) -> str:
    return f"{app}-{service}-{kind}"


def edge_alarm_name(app: str, caller: str, callee: str, kind: str) -> str:
    return f"{app}-{caller}-to-{callee}-{kind}"
