"""templates/params/<service>.json (CodePipeline's template-configuration format), and
who owns each parameter of service.yaml.

https://docs.aws.amazon.com/codepipeline/latest/userguide/continuous-delivery-cloudformation-template-configuration.html
Values are strings, as CloudFormation parameters are.

Ownership (the README's "console-update rule"): on a stack update, CloudFormation gives a
parameter that is not passed its template Default, not its previous value, unless the
caller says UsePreviousValue
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html).
Every deploy, the pipeline's included, goes through `generator.ops.deploy`, which passes
every parameter, one stack at a time, at the moment that stack's change set is made:

- topology-owned: written in the params file from topology.yaml (or the code's
  defaults); every run sets them, so a console change to one lasts until the next run;
- operator-owned (`OPERATOR_PARAMETERS`): never in the params file; passed with
  UsePreviousValue, so CloudFormation itself keeps whatever the stack has when the
  change set is made: a console edit made any time before that is kept;
- live (`LIVE_PARAMETERS`): DesiredCount is the ECS service's desiredCount as it is now,
  so target tracking's scale-out and a console edit both survive a deploy
  (aws/containers-roadmap#493; Copilot's DynamicDesiredCount solves the same problem).
  A service that scales (MinCapacity < MaxCapacity) leaves the ECS service's DesiredCount
  out (`service.SCALES`), so the value only matters once it stops scaling, and then it
  starts from the running count, not the first deploy's;
- deploy-time (`names.DEPLOY_TIME_PARAMETERS`): ImageUri from the build (`deploy --images`,
  a service -> image map the Build stage writes) or, for a service with `image:`, from
  topology.yaml; subnets from the cluster stack's parameters; the permissions boundary from
  the bootstrap stack; the Service Connect TLS role from the cluster stack's outputs;
  DeploymentNonce carried over and changed only by `generator.rollout`.

Secrets reach the params file as ARNs only (one slot per distinct secret name, like the
extra environment variables); a secret's value is never in any generated file.
"""
from __future__ import annotations

from generator import names
from generator.stacks import alarms
from generator.stacks import service as service_stack
from generator.topology import Service, Topology

# What an operator may change in the CloudFormation console and keep across pipeline runs.
OPERATOR_PARAMETERS = ("EnableExecuteCommand",)
# Read from the running service at deploy time.
LIVE_PARAMETERS = ("DesiredCount",)
# Passed on every deploy with the stack's current value (initial_values for a new stack).
CARRIED_PARAMETERS = OPERATOR_PARAMETERS + ("DeploymentNonce",)


def parameters(topology: Topology, service: Service) -> dict[str, str]:
    """The topology-owned parameters: the params file's "Parameters"."""
    values = {
        names.APP_PARAMETER: topology.app,
        names.CLUSTER_STACK_PARAMETER: topology.cluster_stack_name,
        "ServiceName": service.name,
        "DiscoveryName": service.discovery_name,
        "ContainerPort": service.port,
        "Cpu": service.cpu,
        "Memory": service.memory,
        "MinCapacity": service.scaling.min,
        "MaxCapacity": service.scaling.max,
        "CpuTargetPercent": service.scaling.cpu_target,
        "PeerUrls": ",".join(topology.endpoint(callee) for callee in topology.callees(service)),
        # The timeouts are tuned together with service/gunicorn.conf.py: the code owns them.
        "PeerTimeoutSeconds": service_stack.DEFAULT_PEER_TIMEOUT,
        "PerRequestTimeoutSeconds": service_stack.DEFAULT_PER_REQUEST_TIMEOUT,
        "IdleTimeoutSeconds": service_stack.DEFAULT_IDLE_TIMEOUT,
        "HealthCheckPath": service.health_check_path,
        "LogRetentionDays": topology.log_retention_days,
        "PublicLoadBalancer": "true" if service.public else "false",
        "HealthCheckCommand": ",".join(service.container_health_check),
        "ReadonlyRootFilesystem": "true" if service.read_only_root_filesystem else "false",
        "PullRepositoryArn": service.pull_repository_arn,
        "CertificateArn": service.certificate_arn,
        names.TLS_CA_PARAMETER: (topology.service_connect_tls.private_ca_arn
                                 if topology.service_connect_tls else ""),
    }
    values.update(alarm_parameters(service))
    values.update({
        alarms.LATENCY: service.alarms.latency_ms,
        alarms.PERCENTILE: service.alarms.latency_percentile,
        alarms.ROLLBACK: "true" if service.alarms.rollback else "false",
    })
    env = dict(service.environment)
    for variable in topology.environment_names:
        values[names.environment_parameter(variable)] = env.get(variable, "")
    secrets = dict(service.secrets)
    if topology.secret_names:
        values["SecretsKmsKeyArn"] = service.secrets_kms_key_arn
    for variable in topology.secret_names:
        values[names.secret_parameter(variable)] = secrets.get(variable, "")
    return {key: str(value) for key, value in values.items()}


def alarm_parameters(service: Service) -> dict[str, str]:
    """The error-rate alarm's settings, which the service stack and, for the edges into
    the service, its ingress stack both take (generator.stacks.alarms)."""
    rate = service.alarms.error_rate_percent
    return {alarms.ERROR_RATE: f"{rate:g}",
            alarms.MINIMUM_REQUESTS: str(service.alarms.minimum_requests),
            alarms.EVALUATION: str(service.alarms.evaluation_minutes)}


def initial_values(topology: Topology, service: Service) -> dict[str, str]:
    """CARRIED_PARAMETERS for a stack that does not exist yet (its first deploy)."""
    return {
        "DesiredCount": str(service.desired_count),
        "EnableExecuteCommand": "false",
        "DeploymentNonce": "",
    }


MANAGED_BY = "ecs-service-connect-kit"
# The deployer finds a removed service's stacks by these tags (app, kind, service).
KIND_SERVICE = "service"
KIND_NETWORK = "network"
KIND_INGRESS = "ingress"


def tags(topology: Topology, service: Service, kind: str = KIND_SERVICE) -> dict[str, str]:
    return {"app": topology.app, "service": service.name, "kind": kind,
            "managed-by": MANAGED_BY}


def cluster_parameters(topology: Topology) -> dict[str, str]:
    """What an environment's cluster stack is given besides the deployer's own values:
    which deployment it is, and the network topology.yaml names for it. Without
    environments, nothing: the template's defaults are the app, and the network is the
    operator's (--vpc-id, --subnets)."""
    environment = topology.environment
    if environment is None:
        return {}
    values = {names.APP_PARAMETER: topology.app,
              names.NAMESPACE_PARAMETER: topology.namespace,
              names.VPC_ID: environment.network.vpc_id,
              names.PRIVATE_SUBNETS: ",".join(environment.network.private_subnets)}
    if environment.network.public_subnets:
        values[names.PUBLIC_SUBNETS] = ",".join(environment.network.public_subnets)
    return values


def network_parameters(topology: Topology, service: Service) -> dict[str, str]:
    """The network stack's parameters; it has no params file, everything is derived."""
    return {names.APP_PARAMETER: topology.app,
            names.CLUSTER_STACK_PARAMETER: topology.cluster_stack_name,
            "ServiceName": service.name}


def ingress_parameters(topology: Topology, service: Service) -> dict[str, str]:
    """The ingress stack's parameters; like the network stack's, all derived."""
    return {names.APP_PARAMETER: topology.app, "ServiceName": service.name,
            "ContainerPort": str(service.port), "DiscoveryName": service.discovery_name,
            **alarm_parameters(service),
            names.CALLERS_PARAMETER: ",".join(c.name for c in topology.callers(service))
            or names.NO_CALLERS,
            names.CALLEES_PARAMETER: ",".join(f"{c.port}:{c.name}"
                                              for c in topology.callees(service))
            or names.NO_CALLEES}


def configuration(topology: Topology, service: Service) -> dict:
    return {"Parameters": parameters(topology, service), "Tags": tags(topology, service)}
