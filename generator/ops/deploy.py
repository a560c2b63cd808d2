"""`deploy`: the cluster stack, then the plan's waves, each wave's stacks in parallel.

It deploys what the pipeline deploys (templates/cluster.yaml, templates/service.yaml with
templates/params/<service>.json) under the same two rules, imported rather than restated:

- the console-update rule (`generator.params`): the params file's topology-owned values
  are always passed; the operator-owned parameters and the DeploymentNonce
  (`params.CARRIED_PARAMETERS`) keep the stack's current value (UsePreviousValue), or
  `params.initial_values` when the stack is new;
- the callers-redeploy rule (`generator.rollout`): after each wave, the services that
  `rollout.after_wave` lists get their new DeploymentNonce when it differs from the
  stack's, which makes ECS start tasks whose proxies know every same-wave endpoint.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from generator import names, params, plan as plan_module, rollout
from generator.ops import files
from generator.ops.report import Reporter, table
from generator.ops.stackflow import (
    PREVIOUS, StackDeployer, StackOutcome, StackRequest, change_set_type, current_stack,
    previous_parameters,
)
from generator.topology import Topology

IMAGE_PARAMETER = "ImageUri"
NONCE_PARAMETER = "DeploymentNonce"
# Cluster template parameter -> the flag that gives it on a first deploy.
CLUSTER_FLAGS = {
    names.VPC_ID: "--vpc-id",
    names.PRIVATE_SUBNETS: "--subnets",
    names.PUBLIC_SUBNETS: "--public-subnets",
}


class DeployInputError(Exception):
    """Something the operator must pass or fix before anything is deployed."""


@dataclass(frozen=True)
class DeployOptions:
    templates_dir: Path
    services: tuple[str, ...] = ()  # empty: every service
    image: str | None = None
    cluster_values: Mapping[str, str] = field(default_factory=dict)  # from CLUSTER_FLAGS
    poll_seconds: float = 5.0
    max_parallel: int = 8
    dry_run: bool = False  # show every change set, execute none
    timeout_seconds: float | None = None  # per stack; None waits as long as it takes


def cluster_parameters(template: files.Template, stack: dict | None,
                       given: Mapping[str, str]) -> dict[str, object]:
    """Flags win; an existing stack keeps its values; a new stack needs the flags."""
    live = previous_parameters(stack) if change_set_type(stack) == "UPDATE" else {}
    values: dict[str, object] = {}
    missing = []
    for name in template.parameters:
        if given.get(name):
            values[name] = given[name]
        elif name in live:
            values[name] = PREVIOUS
        elif not template.has_default(name):
            missing.append(name)
    if missing:
        flags = " ".join(CLUSTER_FLAGS.get(name, f"(a value for {name})") for name in missing)
        raise DeployInputError(
            f"{template.path}: {', '.join(missing)} not given: the cluster stack does not "
            f"exist yet, so pass {flags}")
    return values


def service_parameters(template: files.Template, params_file: files.ParamsFile,
                       stack: dict | None, image: str | None,
                       initial: Mapping[str, str]) -> dict[str, object]:
    """The console-update rule, for one service stack (see the module docstring)."""
    live = previous_parameters(stack) if change_set_type(stack) == "UPDATE" else {}
    unknown = sorted(set(params_file.parameters) - set(template.parameters))
    if unknown:
        raise DeployInputError(f"{params_file.path}: not parameters of {template.path.name}: "
                               f"{', '.join(unknown)} (run `python -m generator lint`)")
    values: dict[str, object] = {}
    for name in template.parameters:
        if name == IMAGE_PARAMETER:
            values[name] = _image(image, live, params_file)
        elif name in params.CARRIED_PARAMETERS:
            if name in live:
                values[name] = PREVIOUS
            elif name in initial:
                values[name] = initial[name]
        elif name in params_file.parameters:
            values[name] = params_file.parameters[name]
        # Anything else gets the template's Default, exactly as in the pipeline.
    return values


def _image(image: str | None, live: Mapping[str, str], params_file: files.ParamsFile) -> object:
    if image:
        return image
    if IMAGE_PARAMETER in live:
        return PREVIOUS
    service = params_file.path.stem
    raise DeployInputError(f"{service}: its stack does not exist yet, so pass --image "
                           "(the image URI with a tag or digest)")


class Deployment:
    """One `deploy` run: reads every file first, then changes stacks in the plan's order."""

    def __init__(self, cfn, topology: Topology, options: DeployOptions, reporter: Reporter):
        self.cfn = cfn
        self.topology = topology
        self.options = options
        self.reporter = reporter
        self.deployer = StackDeployer(cfn, reporter, options.poll_seconds,
                                      timeout_seconds=options.timeout_seconds)
        self.plan = plan_module.build(topology)
        self.selected = self._selected_services()
        self.cluster_template = files.read_template(options.templates_dir, files.CLUSTER_TEMPLATE)
        self.service_template = files.read_template(options.templates_dir, files.SERVICE_TEMPLATE)
        self.params_files = {name: files.read_params(options.templates_dir, name)
                             for name in self.selected}
        self.outcomes: list[StackOutcome] = []

    def _selected_services(self) -> tuple[str, ...]:
        known = [service.name for service in self.topology.services]
        unknown = [name for name in self.options.services if name not in known]
        if unknown:
            raise DeployInputError(f"unknown service(s): {', '.join(unknown)} "
                                   f"(known: {', '.join(known)})")
        return tuple(self.options.services) or tuple(known)

    def run(self) -> bool:
        if not self._deploy_cluster():
            return False
        for index, wave in enumerate(self.plan.waves):
            members = [name for name in wave if name in self.selected]
            if not members:
                continue
            self.reporter.say(f"== wave {index + 1}: {', '.join(members)}"
                              + ("  (in parallel)" if len(members) > 1 else ""))
            if not self._deploy_in_parallel([self._service_request(n) for n in members]):
                return False
            if not self._redeploy_callers(index):
                return False
        return True

    # --- stacks ------------------------------------------------------------------------

    def _deploy_cluster(self) -> bool:
        name = self.topology.cluster_stack_name
        self.reporter.say(f"== cluster: {name}")
        stack = current_stack(self.cfn, name)
        request = StackRequest(
            name, self.cluster_template.body,
            cluster_parameters(self.cluster_template, stack, self.options.cluster_values),
            {"app": self.topology.app, "managed-by": "ecs-service-connect-kit"})
        return self._record([self.deployer.deploy(request, stack,
                                                  preview=self.options.dry_run)])

    def _service_request(self, name: str) -> tuple[StackRequest, dict | None]:
        service = self.topology.service(name)
        stack_name = self.topology.stack_name(service)
        stack = current_stack(self.cfn, stack_name)
        params_file = self.params_files[name]
        values = service_parameters(self.service_template, params_file, stack,
                                    self.options.image, params.initial_values(self.topology, service))
        return StackRequest(stack_name, self.service_template.body, values, params_file.tags), stack

    def _redeploy_callers(self, wave: int) -> bool:
        """The rollout rule's follow-up: a new nonce only where it differs from the stack's."""
        requests = []
        for redeploy in rollout.after_wave(self.topology, self.plan, wave):
            stack_name = self.topology.stack_name(self.topology.service(redeploy.service))
            stack = current_stack(self.cfn, stack_name)
            if stack is None or change_set_type(stack) == "CREATE":
                continue  # a service not deployed in this run and never before
            current = previous_parameters(stack).get(NONCE_PARAMETER)
            if not rollout.needs_redeploy(current, redeploy):
                continue
            callees = ", ".join(rollout.same_wave_callees(self.topology, self.plan,
                                                          redeploy.service))
            verb = "would force" if self.options.dry_run else "forcing"
            self.reporter.line(stack_name, f"{verb} a new deployment: the endpoints it calls "
                                           f"in its own wave ({callees}) changed")
            if self.options.dry_run:
                continue
            values = {key: PREVIOUS for key in previous_parameters(stack)}
            values[NONCE_PARAMETER] = redeploy.nonce
            requests.append((StackRequest(stack_name, None, values), stack))
        return self._deploy_in_parallel(requests) if requests else True

    def _deploy_in_parallel(self, requests: Sequence[tuple[StackRequest, dict | None]]) -> bool:
        workers = max(1, min(len(requests), self.options.max_parallel))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deploy") as pool:
            futures = [pool.submit(self.deployer.deploy, request, stack,
                                   preview=self.options.dry_run)
                       for request, stack in requests]
            # Results in submission order; .result() re-raises a thread's exception here.
            return self._record([future.result() for future in futures])

    def _record(self, outcomes: list[StackOutcome]) -> bool:
        self.outcomes.extend(outcomes)
        return all(outcome.ok for outcome in outcomes)

    def summary(self) -> str:
        rows = [(o.stack_name, o.result, o.failure or _changes_summary(o)) for o in self.outcomes]
        return table(("STACK", "RESULT", "DETAIL"), rows)


def _changes_summary(outcome: StackOutcome) -> str:
    if not outcome.changes:
        return ""
    counts: dict[str, int] = {}
    for change in outcome.changes:
        counts[change.action] = counts.get(change.action, 0) + 1
    return ", ".join(f"{count} {action.lower()}" for action, count in sorted(counts.items()))
