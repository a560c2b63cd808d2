"""What is running, read from the APIs: stacks (CloudFormation), services (ECS) and the
endpoints Service Connect registered (Cloud Map DiscoverInstances).

Service Connect endpoints are registered in Cloud Map only and are not resolvable through
DNS, so DiscoverInstances is the way to see them. `verify` and `status` share `gather`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone

from generator import names
from generator.ops.aws import error_code
from generator.ops.report import table
from generator.ops.stackflow import current_stack, stack_outputs
from generator.topology import Topology

COMPLETE_STACK_STATES = ("CREATE_COMPLETE", "UPDATE_COMPLETE")
ECS_DESCRIBE_LIMIT = 10  # DescribeServices takes at most ten services


@dataclass(frozen=True)
class ServiceState:
    name: str
    stack_name: str
    stack_status: str | None  # None: no such stack
    last_event: str
    ecs_status: str | None  # ACTIVE, DRAINING, INACTIVE; None: not found
    running: int | None
    desired: int | None
    rollout: str | None  # the PRIMARY deployment's rolloutState
    rollout_reason: str
    deployments: int
    endpoint: str
    healthy: int | None  # healthy instances in Cloud Map; None: could not be read
    discovery_note: str

    @property
    def tasks(self) -> str:
        if self.running is None:
            return "-"
        return f"{self.running}/{self.desired}"


def gather(cfn, ecs, discovery, topology: Topology) -> tuple[dict | None, list[ServiceState]]:
    cluster = current_stack(cfn, topology.cluster_stack_name)
    outputs = stack_outputs(cluster)
    cluster_name = outputs.get(names.CLUSTER_NAME) or _physical_id(cfn, cluster, "Cluster")
    namespace = outputs.get(names.NAMESPACE_NAME, topology.namespace)
    stacks = {s.name: current_stack(cfn, topology.stack_name(s)) for s in topology.services}
    # The ECS service is named after the topology's service (ServiceName parameter).
    ecs_names = {name: stack_outputs(stack).get("EcsServiceName", name)
                 for name, stack in stacks.items()}
    ecs_services = _describe_ecs(ecs, cluster_name, list(ecs_names.values())) if cluster_name else {}
    states = []
    for service in topology.services:
        stack = stacks[service.name]
        ecs_service = ecs_services.get(ecs_names[service.name])
        primary = _primary_deployment(ecs_service)
        healthy, note = _healthy_instances(discovery, namespace, service.discovery_name)
        states.append(ServiceState(
            name=service.name,
            stack_name=topology.stack_name(service),
            stack_status=stack["StackStatus"] if stack else None,
            last_event=_last_event(cfn, stack),
            ecs_status=ecs_service.get("status") if ecs_service else None,
            running=ecs_service.get("runningCount") if ecs_service else None,
            desired=ecs_service.get("desiredCount") if ecs_service else None,
            rollout=primary.get("rolloutState") if primary else None,
            rollout_reason=" ".join(str(primary.get("rolloutStateReason", "")).split())
            if primary else "",
            deployments=len(ecs_service.get("deployments", [])) if ecs_service else 0,
            endpoint=topology.endpoint(service),
            healthy=healthy,
            discovery_note=note,
        ))
    return cluster, states


def problems(state: ServiceState) -> list[tuple[str, str, str]]:
    """(check, found, expected) for everything about one service that is not right."""
    found = []
    if state.stack_status not in COMPLETE_STACK_STATES:
        found.append(("stack", f"{state.stack_name}: {state.stack_status or 'does not exist'}",
                      " or ".join(COMPLETE_STACK_STATES)))
    if state.ecs_status != "ACTIVE":
        found.append(("ecs service", state.ecs_status or "not found", "ACTIVE"))
    else:
        if state.running != state.desired:
            found.append(("tasks", f"running {state.running} of {state.desired}",
                          "running = desired"))
        if state.rollout != "COMPLETED" or state.deployments != 1:
            detail = state.rollout or "no deployment"
            if state.deployments > 1:
                detail += f", {state.deployments} deployments"
            if state.rollout_reason and state.rollout != "COMPLETED":
                detail += f": {_shorten(state.rollout_reason)}"
            found.append(("rollout", detail, "COMPLETED, 1 deployment"))
    if not state.healthy:
        detail = state.discovery_note or "0 healthy instances"
        found.append(("endpoint", f"{state.endpoint}: {detail}", "at least 1 healthy instance"))
    return found


def verify_table(states: list[ServiceState], extra: list[tuple] = ()) -> str:
    """`extra`: more (service, check, found, expected) rows (the alarms in ALARM)."""
    rows = [(s.name, check, found, expected) for s in states for check, found, expected in problems(s)]
    rows += list(extra)
    return table(("SERVICE", "CHECK", "FOUND", "EXPECTED"), rows) if rows else ""


def status_table(states: list[ServiceState]) -> str:
    rows = [
        (s.name, s.stack_status or "does not exist", s.tasks, s.rollout,
         s.endpoint, "?" if s.healthy is None else s.healthy, s.last_event)
        for s in states
    ]
    return table(("SERVICE", "STACK", "TASKS", "ROLLOUT", "ENDPOINT", "HEALTHY", "LAST EVENT"),
                 rows)


# --- reads -----------------------------------------------------------------------------


def _physical_id(cfn, stack: dict | None, logical_id: str) -> str | None:
    """A resource's physical id, for a stack whose outputs are missing (one whose create
    never finished, or an endpoint that does not report outputs, like moto's change sets)."""
    if not stack:
        return None
    try:
        resource = cfn.describe_stack_resource(StackName=stack["StackId"],
                                               LogicalResourceId=logical_id)
    except Exception as err:
        if error_code(err) == "ValidationError":
            return None
        raise
    return resource["StackResourceDetail"].get("PhysicalResourceId") or None


def _describe_ecs(ecs, cluster: str, services: list[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for start in range(0, len(services), ECS_DESCRIBE_LIMIT):
        batch = services[start:start + ECS_DESCRIBE_LIMIT]
        try:
            response = ecs.describe_services(cluster=cluster, services=batch)
        except Exception as err:
            if error_code(err) == "ClusterNotFoundException":
                return {}
            raise
        for service in response.get("services", []):
            found[service["serviceName"]] = service
    return found


def _primary_deployment(service: dict | None) -> dict | None:
    if not service:
        return None
    for deployment in service.get("deployments", []):
        if deployment.get("status") == "PRIMARY":
            return deployment
    return None


def _healthy_instances(discovery, namespace: str, discovery_name: str) -> tuple[int | None, str]:
    """Healthy instances Service Connect registered for one discovery name."""
    try:
        response = discovery.discover_instances(
            NamespaceName=namespace, ServiceName=discovery_name, HealthStatus="HEALTHY",
            MaxResults=100)
    except Exception as err:
        code = error_code(err)
        if code == "NamespaceNotFound":
            return 0, f"namespace {namespace} not found in Cloud Map"
        if code == "ServiceNotFound":
            return 0, "not registered in Cloud Map"
        raise
    count = len(response.get("Instances", []))
    return count, "" if count else "0 healthy instances"


def _last_event(cfn, stack: dict | None) -> str:
    if not stack:
        return ""
    events = cfn.describe_stack_events(StackName=stack["StackId"])["StackEvents"]
    if not events:
        return ""
    event = events[0]
    stamp = event["Timestamp"].astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    reason = error_free(event.get("ResourceStatusReason"))
    text = f"{stamp} {event['LogicalResourceId']} {event['ResourceStatus']}"
    return f"{text}: {_shorten(reason)}" if reason and "_FAILED" in event["ResourceStatus"] else text


def error_free(value) -> str:
    return " ".join(str(value or "").split())


def _shorten(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
