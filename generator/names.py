"""Names shared by the cluster stack, the service stack, the pipeline and the boto3 commands.

An export written by the cluster stack is imported by name in the service stack; keeping
both spellings here is what keeps them from drifting apart.
"""
CLUSTER_NAME = "ClusterName"
CLUSTER_ARN = "ClusterArn"
NAMESPACE_ARN = "NamespaceArn"
NAMESPACE_ID = "NamespaceId"
NAMESPACE_NAME = "NamespaceName"
VPC_ID = "VpcId"
PRIVATE_SUBNETS = "PrivateSubnetIds"
PUBLIC_SUBNETS = "PublicSubnetIds"

# The service template's parameter that names the cluster stack whose exports it imports.
CLUSTER_STACK_PARAMETER = "ClusterStackName"
# The port mapping's Name; Service Connect refers to the container port by it.
PORT_NAME = "http"


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def security_group_logical_id(service: str) -> str:
    return f"{_camel(service)}TaskSecurityGroup"


def ingress_logical_id(caller: str, callee: str) -> str:
    return f"{_camel(caller)}To{_camel(callee)}Ingress"


def security_group_export(service: str) -> str:
    """Export suffix; the service stack rebuilds it from its ServiceName parameter."""
    return f"TaskSecurityGroup-{service}"


# Parameters that a params file leaves out: the pipeline (or `deploy`) supplies them per run.
DEPLOY_TIME_PARAMETERS = ("ImageUri", "DeploymentNonce")


def environment_parameter(variable: str) -> str:
    """Parameter logical id for an extra environment variable: LOG_LEVEL -> EnvLogLevel."""
    return "Env" + "".join(part.capitalize() for part in variable.split("_"))
