"""templates/params/<service>.json: CodePipeline's template-configuration format.

https://docs.aws.amazon.com/codepipeline/latest/userguide/continuous-delivery-cloudformation-template-configuration.html
Values are strings, as CloudFormation parameters are. ImageUri and DeploymentNonce are
absent: the pipeline (or `deploy`) supplies them per run.
"""
from __future__ import annotations

from generator import names
from generator.topology import Service, Topology


def parameters(topology: Topology, service: Service) -> dict[str, str]:
    values = {
        names.CLUSTER_STACK_PARAMETER: topology.cluster_stack_name,
        "ServiceName": service.name,
        "DiscoveryName": service.discovery_name,
        "ContainerPort": service.port,
        "Cpu": service.cpu,
        "Memory": service.memory,
        "DesiredCount": service.desired_count,
        "MinCapacity": service.scaling.min,
        "MaxCapacity": service.scaling.max,
        "CpuTargetPercent": service.scaling.cpu_target,
        "PeerUrls": ",".join(topology.endpoint(callee) for callee in topology.callees(service)),
        "HealthCheckPath": service.health_check_path,
        "LogRetentionDays": topology.log_retention_days,
        "PublicLoadBalancer": "true" if service.public else "false",
    }
    env = dict(service.environment)
    for variable in topology.environment_names:
        values[names.environment_parameter(variable)] = env.get(variable, "")
    return {key: str(value) for key, value in values.items()}


def tags(topology: Topology, service: Service) -> dict[str, str]:
    return {"app": topology.app, "service": service.name, "managed-by": "ecs-service-connect-kit"}


def configuration(topology: Topology, service: Service) -> dict:
    return {"Parameters": parameters(topology, service), "Tags": tags(topology, service)}
