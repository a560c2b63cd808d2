"""templates/params/<service>.json: CodePipeline's template-configuration format, and
who owns each parameter of service.yaml.

https://docs.aws.amazon.com/codepipeline/latest/userguide/continuous-delivery-cloudformation-template-configuration.html
Values are strings, as CloudFormation parameters are.

Ownership (the README's "console-update rule"): on a stack update, CloudFormation gives a
parameter that is not passed its template Default, not its previous value, unless the
caller says UsePreviousValue; CodePipeline's CloudFormation action cannot say that
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html,
https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/1789).
So every parameter has exactly one owner, and every deploy passes every parameter:

- topology-owned: written in the params file from topology.yaml (or the code's
  defaults); every run sets them, so a console change to one lasts until the next run;
- operator-owned (`OPERATOR_PARAMETERS`): never in the params file; every run passes
  the value the stack has now (the pipeline's live-parameters snapshot, boto3's
  UsePreviousValue), and `initial_values` only when the stack does not exist yet;
- deploy-time (`names.DEPLOY_TIME_PARAMETERS`): ImageUri from the build; DeploymentNonce
  carried over like an operator parameter and changed only by `generator.rollout`.
"""
from __future__ import annotations

from generator import names
from generator.stacks import service as service_stack
from generator.topology import Service, Topology

# What an operator may change in the CloudFormation console and keep across pipeline runs.
OPERATOR_PARAMETERS = ("DesiredCount", "EnableExecuteCommand")
# Passed on every deploy with the stack's current value (initial_values for a new stack).
CARRIED_PARAMETERS = OPERATOR_PARAMETERS + ("DeploymentNonce",)


def parameters(topology: Topology, service: Service) -> dict[str, str]:
    """The topology-owned parameters: the params file's "Parameters"."""
    values = {
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
    }
    env = dict(service.environment)
    for variable in topology.environment_names:
        values[names.environment_parameter(variable)] = env.get(variable, "")
    return {key: str(value) for key, value in values.items()}


def initial_values(topology: Topology, service: Service) -> dict[str, str]:
    """CARRIED_PARAMETERS for a stack that does not exist yet (its first deploy)."""
    return {
        "DesiredCount": str(service.desired_count),
        "EnableExecuteCommand": "false",
        "DeploymentNonce": "",
    }


def tags(topology: Topology, service: Service) -> dict[str, str]:
    return {"app": topology.app, "service": service.name, "managed-by": "ecs-service-connect-kit"}


def configuration(topology: Topology, service: Service) -> dict:
    return {"Parameters": parameters(topology, service), "Tags": tags(topology, service)}
