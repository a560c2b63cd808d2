"""Which services need a forced new deployment after a wave, and the nonce they get.

Why: a task's Service Connect (Envoy) proxy learns the namespace's endpoints when the
task starts. The deploy order (`generator.plan`) deploys callees before callers, so a
caller's new tasks start after every callee in an EARLIER wave is registered. The hole
is a wave's own members: services in one wave that call each other (a cycle, such as the
seed's server <-> client) deploy in parallel, so a caller's tasks may start before its
same-wave callee's endpoint exists (first deploy, a service added to the cycle) or while
that endpoint is changing (new discovery name or port).

The rule, shared by the pipeline (`pipeline.stack`) and the boto3 `deploy`
(`generator.ops`), which must both import it from here:

1. Deploy each wave as usual, carrying the stack's current `DeploymentNonce` over
   unchanged (CodePipeline: from the live-parameters snapshot; boto3: UsePreviousValue).
2. After the wave, update every service listed by `after_wave(...)` with
   `DeploymentNonce = redeploy.nonce`, everything else unchanged.

The nonce is a digest of the endpoints the service calls inside its own wave. So it
changes exactly when the set of same-wave callee endpoints changes (including "the
stack is new", whose nonce starts empty); CloudFormation then sees a new
`ForceNewDeployment` nonce and ECS starts fresh tasks whose proxies know every endpoint.
When nothing changed, the nonce equals the stack's current one, the update is a no-op
and no task restarts. `needs_redeploy(current, redeploy)` states that comparison for a
caller that can read the stack's current value (the boto3 deploy can skip the call).

Everything here is pure: Topology and Plan in, tuples and strings out.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from generator.plan import Plan
from generator.topology import Topology

NONCE_PREFIX = "sc-"
# service.yaml's DeploymentNonce allows [A-Za-z0-9._-]{0,64}; 3 + 20 characters fits.
_DIGEST_CHARS = 20


@dataclass(frozen=True)
class Redeploy:
    """Force a new deployment of `service` by setting its DeploymentNonce to `nonce`."""

    service: str
    nonce: str


def same_wave_callees(topology: Topology, plan: Plan, service: str) -> tuple[str, ...]:
    """The callees of `service` that deploy in its own wave (only cycle partners can)."""
    wave = next(members for members in plan.waves if service in members)
    return tuple(callee for callee in topology.service(service).calls if callee in wave)


def nonce(topology: Topology, plan: Plan, service: str) -> str:
    """DeploymentNonce for `service`: a digest of its same-wave callees' endpoints.

    Empty when it has none, which is also the template's default: a service outside a
    cycle never needs the follow-up.
    """
    endpoints = sorted(
        topology.endpoint(topology.service(callee))
        for callee in same_wave_callees(topology, plan, service)
    )
    if not endpoints:
        return ""
    digest = hashlib.sha256("\n".join(endpoints).encode("utf-8")).hexdigest()
    return NONCE_PREFIX + digest[:_DIGEST_CHARS]


def after_wave(topology: Topology, plan: Plan, wave: int) -> tuple[Redeploy, ...]:
    """Services to update with a new nonce once wave `wave` (0-based) has deployed.

    In the wave's order (the topology's order), so generated pipelines are stable.
    """
    return tuple(
        Redeploy(service, nonce(topology, plan, service))
        for service in plan.waves[wave]
        if same_wave_callees(topology, plan, service)
    )


def schedule(topology: Topology, plan: Plan) -> tuple[tuple[Redeploy, ...], ...]:
    """`after_wave` for every wave: element i is what follows wave i (often empty)."""
    return tuple(after_wave(topology, plan, index) for index in range(len(plan.waves)))


def needs_redeploy(current_nonce: str | None, redeploy: Redeploy) -> bool:
    """True when the stack's current DeploymentNonce differs from the one it should get.

    `current_nonce` is None (or "") for a stack that did not exist before this run.
    """
    return (current_nonce or "") != redeploy.nonce
