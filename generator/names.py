"""Names shared by the cluster stack, the service stack, the pipeline and the boto3 commands.

An export written by the cluster or a network stack is imported by name in the service
stack; keeping both spellings here is what keeps them from drifting apart.
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


# The network stack's export of the task security group: "<network stack>-<this>".
TASK_SECURITY_GROUP = "TaskSecurityGroupId"
# What Callers lists for a service that no service calls; a service may not be named so.
NO_CALLERS = "none"
# Parameters of the service template that the deployer fills in per run (see
# generator.params for every parameter's owner).
APP_PARAMETER = "AppName"
CALLERS_PARAMETER = "Callers"
SUBNETS_PARAMETER = "Subnets"
LOAD_BALANCER_SUBNETS_PARAMETER = "LoadBalancerSubnets"
BOUNDARY_PARAMETER = "PermissionsBoundaryArn"
# Exports of the bootstrap stack ("<app>-bootstrap-<name>").
DEPLOY_ROLE_EXPORT = "DeployRoleArn"
BOUNDARY_EXPORT = "PermissionsBoundaryArn"
TEMPLATE_BUCKET_EXPORT = "TemplateBucketName"


# Parameters that a params file leaves out: the pipeline (or `deploy`) supplies them per run.
DEPLOY_TIME_PARAMETERS = ("ImageUri", "DeploymentNonce", SUBNETS_PARAMETER,
                          LOAD_BALANCER_SUBNETS_PARAMETER, BOUNDARY_PARAMETER)


def environment_parameter(variable: str) -> str:
    """Parameter logical id for an extra environment variable: LOG_LEVEL -> EnvLogLevel."""
    return "Env" + "".join(part.capitalize() for part in variable.split("_"))
