"""Where each service's deploy action goes: steps (run orders) packed into stages.

Pure: Topology + Plan in, a tuple of `DeployStage` out; `pipeline.stack` turns it into
CodePipeline stages. The packing is deterministic (same topology, same pipeline).

A *step* is a set of actions that run in parallel (one run order): a wave's deploys,
or the redeploys `generator.rollout` asks for after that wave. Steps keep their order.
CodePipeline quotas (https://docs.aws.amazon.com/codepipeline/latest/userguide/limits.html,
fixed, cannot be raised): at most 50 actions in a stage, at most 50 parallel and 50
sequential actions in a stage, at most 50 stages in a pipeline. So:

- a wave with more than 50 services is cut into chunks of 50, deployed one chunk after
  the other (services within a wave do not need each other, except cycle members, which
  the redeploy step after the wave covers whichever chunk they land in);
- steps are packed greedily into stages named Deploy-1, Deploy-2, ... while a stage has
  room for the whole next step (actions <= 50, run orders <= 50).
"""
from __future__ import annotations

from dataclasses import dataclass

from generator import rollout
from generator.plan import Plan
from generator.topology import Topology

MAX_ACTIONS_PER_STAGE = 50
MAX_RUN_ORDERS_PER_STAGE = 50
MAX_STAGES_PER_PIPELINE = 50
STAGE_PREFIX = "Deploy-"


@dataclass(frozen=True)
class Step:
    """Actions at one run order. `nonces` is empty for a deploy step; for a redeploy step
    it holds the DeploymentNonce of each service, in the same order."""

    wave: int  # 0-based index into plan.waves
    services: tuple[str, ...]
    nonces: tuple[str, ...] = ()

    @property
    def is_redeploy(self) -> bool:
        return bool(self.nonces)


@dataclass(frozen=True)
class DeployStage:
    name: str
    steps: tuple[Step, ...]

    @property
    def action_count(self) -> int:
        return sum(len(step.services) for step in self.steps)


def _chunks(items: tuple, size: int) -> list[tuple]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def steps(topology: Topology, plan: Plan) -> tuple[Step, ...]:
    result: list[Step] = []
    for index, wave in enumerate(plan.waves):
        for chunk in _chunks(wave, MAX_ACTIONS_PER_STAGE):
            result.append(Step(index, chunk))
        redeploys = rollout.after_wave(topology, plan, index)
        for chunk in _chunks(redeploys, MAX_ACTIONS_PER_STAGE):
            result.append(Step(index, tuple(r.service for r in chunk),
                               tuple(r.nonce for r in chunk)))
    return tuple(result)


def stages(topology: Topology, plan: Plan) -> tuple[DeployStage, ...]:
    packed: list[list[Step]] = []
    for step in steps(topology, plan):
        current = packed[-1] if packed else None
        fits = (
            current is not None
            and len(current) < MAX_RUN_ORDERS_PER_STAGE
            and sum(len(s.services) for s in current) + len(step.services)
            <= MAX_ACTIONS_PER_STAGE
        )
        if fits:
            current.append(step)
        else:
            packed.append([step])
    return tuple(
        DeployStage(f"{STAGE_PREFIX}{number}", tuple(group))
        for number, group in enumerate(packed, start=1)
    )
