"""`deploy`: every stack of the app, in the one order in which each step can succeed.

The pipeline's Deploy stage runs this same command, so there is one deployer. Order:

0. preflight (`generator.ops.preflight`): every input of every stack the run deploys is
   read and checked, and every problem reported, before the first AWS write;
1. prune, phase 1: the service and ingress stacks of services no longer in the topology
   are deleted first, before anything they depend on changes (found by their tags, not
   their names);
2. the cluster stack;
3. every network, ingress and service stack, as one graph of jobs (`_stack_jobs`), each
   started as soon as what it needs is done, not when a phase is:
   - a network stack (task security group) that does not exist yet: nothing;
   - an ingress stack (the rules admitting its service's callers, and its outbound rules
     to its callees): the new groups it names, so a caller's group exists before a
     callee admits it;
   - a network stack that exists: its service's ingress stack, so a narrower outbound
     rule set (the allow-all rule of earlier versions goes) comes once the rules to the
     callees exist;
   - a service stack: its network and ingress stacks, its callees' ingress stacks (a new
     caller is admitted before its tasks start), and the service stacks of the services it
     calls outside its own cycle (`generator.plan`: callees first); a cycle's redeploys
     (`generator.rollout`) once all its members are deployed;
   - a bake (`generator.ops.bake`), after a service stack this run changed: its alarms
     and those of the edges into it watched for `--bake-minutes`; its callers' service
     stacks wait for the bake, not the stack, and a breach stops the run; an alarm
     already in ALARM before the service's stack started (ECS then watches none) must
     leave ALARM within the bake, else the run stops too;
4. prune, phase 2: the network stacks of removed services, now that no ingress rule
   imports their groups (CloudFormation refuses to delete an export in use:
   https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-exports.html);
5. the cluster stack once more, only when Service Connect TLS was turned off: its
   infrastructure role goes after the last service stack stopped using it.
6. the deployment's CloudWatch dashboards (`generator.ops.dashboards`), once every stack
   succeeded.

Parameters follow the console-update rule (`generator.params`): topology-owned values from
the params file; operator-owned ones with UsePreviousValue; DesiredCount read from the
running ECS service at that stack's turn; subnets from the cluster stack's parameters;
the permissions boundary and deploy role from the bootstrap stack. The network and
ingress stacks' parameters are all derived from topology.yaml. Templates over
CloudFormation's 51,200-byte inline limit go through the bootstrap stack's bucket.

Every step runs its stacks through `generator.ops.scheduler` (many in flight, polled
together, calls paced); a stack that already is what the run asks for gets no change set
(`StackDeployer.unchanged`). Stacks are read once, by the preflight's listing, and again
only when this run changed them.

Over 400 lines because each stack kind's parameters are built here twice over: for the
preflight (`stack_inputs`: what the deployer gives each stack) and at the stack's turn, and
the service stacks' jobs and their dependencies are built beside them; kept in one module
so the two cannot drift apart.

Moving a service's caller rules out of its service stack (where earlier versions kept
them, under the AWS::LanguageExtensions transform) into its ingress stack: the same rule
cannot exist twice on a group (EC2's InvalidPermission.Duplicate,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html), so the
ingress stack of a service whose live stack still has the `Callers` parameter is created
right after that service stack's update removed the old rules, in the same wave; its
callers lose reach to it for the time the ingress stack takes to create, once.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from generator import names, params, plan as plan_module, rollout
from generator.awsfacts import quotas
from generator.ops import bake, files, preflight
from generator.ops.report import Reporter, table
from generator.ops.scheduler import Job, Pacer, Scheduler
from generator.ops.stackflow import (
    PREVIOUS, StackDeployer, StackOutcome, StackRequest, change_set_type, current_stack,
    previous_parameters, recreated, stack_outputs,
)
from generator.topology import Topology, ecr_repository_arn

IMAGE_PARAMETER = "ImageUri"
PULL_REPOSITORY_PARAMETER = "PullRepositoryArn"
NONCE_PARAMETER = "DeploymentNonce"
# Cluster template parameter -> the flag that gives it on a first deploy.
CLUSTER_FLAGS = {
    names.VPC_ID: "--vpc-id",
    names.PRIVATE_SUBNETS: "--subnets",
    names.PUBLIC_SUBNETS: "--public-subnets",
}


# service.yaml parameters the deployer passes itself (besides ImageUri, given when there is
# an image): this run's subnets, boundary and TLS role (_deploy_values), and the live and
# carried values (generator.params).
DEPLOYER_PARAMETERS = (names.SUBNETS_PARAMETER, names.LOAD_BALANCER_SUBNETS_PARAMETER,
                       names.BOUNDARY_PARAMETER, names.TLS_ROLE_PARAMETER,
                       *params.LIVE_PARAMETERS, *params.CARRIED_PARAMETERS)
SERVICE_HINTS = {IMAGE_PARAMETER: "--images FILE (the build's service -> image map) or "
                                  "--image URI"}


# Stacks in flight at once: chosen with `python -m benchmarks deploy` (README, "Deploy
# time"): more only adds waiting for the paced CloudFormation calls.
DEFAULT_MAX_PARALLEL = 32


class DeployInputError(Exception):
    """Something the operator must pass or fix before anything is deployed."""


@dataclass(frozen=True)
class DeployOptions:
    templates_dir: Path
    services: tuple[str, ...] = ()  # empty: every service
    image: str | None = None  # every service's image unless `images` or the topology says
    images: Mapping[str, str] = field(default_factory=dict)  # service -> image (the build's)
    cluster_values: Mapping[str, str] = field(default_factory=dict)  # from CLUSTER_FLAGS
    poll_seconds: float = 5.0
    max_parallel: int = DEFAULT_MAX_PARALLEL  # stacks in flight at once
    # CloudFormation calls a second, at most (the scheduler's Pacer); 0: unpaced.
    calls_per_second: float = quotas.CLOUDFORMATION_CALLS_PER_SECOND_ASSUMED
    dry_run: bool = False  # show every change set, execute none
    timeout_seconds: float | None = None  # per stack; None waits as long as it takes
    role_arn: str | None = None  # default: the bootstrap stack's deploy role, if any
    template_bucket: str | None = None  # default: the bootstrap stack's bucket, if any
    permissions_boundary: str | None = None  # default: the bootstrap stack's boundary
    prune: bool = True  # delete the stacks of services no longer in the topology
    # How long a changed service's alarms are watched before its callers go on
    # (generator.ops.bake); None: each service's topology.yaml alarms.bake_minutes;
    # 0: no bake.
    bake_seconds: float | None = None
    # Bake a service stack this run creates too. Off: a new service has no callers sending
    # it traffic yet (they are new too, or are redeployed after it by the rollout rule), so
    # there is nothing to watch, and at 300 services the bakes of a first deploy would add
    # 10 x 5 minutes (README, "Deploy").
    bake_new_stacks: bool = False


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
                       initial: Mapping[str, str],
                       deploy_values: Mapping[str, str] | None = None,
                       live_desired_count: int | None = None) -> dict[str, object]:
    """The console-update rule, for one service stack (see the module docstring).

    `deploy_values` are this run's subnets and permissions boundary; `live_desired_count`
    is the ECS service's desiredCount now (None when it has no service yet)."""
    deploy_values = deploy_values or {}
    live = previous_parameters(stack) if change_set_type(stack) == "UPDATE" else {}
    unknown = sorted(set(params_file.parameters) - set(template.parameters))
    if unknown:
        raise DeployInputError(f"{params_file.path}: not parameters of {template.path.name}: "
                               f"{', '.join(unknown)} (run `python -m generator lint`)")
    values: dict[str, object] = {}
    for name in template.parameters:
        if name == IMAGE_PARAMETER:
            values[name] = _image(image, live, params_file)
        elif name in deploy_values:
            values[name] = deploy_values[name]
        elif name in params.LIVE_PARAMETERS:
            if live_desired_count is not None and live.get(name) != str(live_desired_count):
                values[name] = str(live_desired_count)
            elif name in live:
                values[name] = PREVIOUS
            elif name in initial:
                values[name] = initial[name]
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
    raise DeployInputError(f"{service}: its stack does not exist yet, so pass --images "
                           "FILE (the build's service -> image map) or --image URI")


def _live(stack: dict | None) -> dict[str, str]:
    """The stack's parameters when the run updates it; {} when it creates it."""
    return previous_parameters(stack) if change_set_type(stack) == "UPDATE" else {}


def _new_stack_state(stack: dict | None, absent: str) -> str:
    if stack is None:
        return absent
    if recreated(stack):
        return (f"its first create failed ({stack['StackStatus']}), so it is deleted and "
                "created again")
    return "the stack does not exist yet" if change_set_type(stack) == "CREATE" else ""


class Deployment:
    """One `deploy` run: every input checked first (`preflight`), then the stacks changed
    in the order above."""

    def __init__(self, cfn, topology: Topology, options: DeployOptions, reporter: Reporter,
                 ecs=None, s3=None, acmpca=None, sleep=time.sleep, clock=time.monotonic,
                 cloudwatch=None):
        self.cfn = cfn
        self.sleep = sleep
        self.clock = clock
        self.pacer = Pacer(options.calls_per_second, sleep, clock)
        self.pacer.attach(cfn)
        self._desired_counts: dict[str, int | None] = {}
        self.ecs = ecs
        self.s3 = s3
        self.acmpca = acmpca  # read only when topology.yaml has service_connect_tls
        # The bakes' alarms (None: no bake), read with the same pacing, and the
        # dashboards, put after a successful run.
        self.cloudwatch = cloudwatch
        if cloudwatch is not None:
            self.pacer.attach(cloudwatch)
        self._alarms_before: dict[str, dict[str, str]] = {}
        self.topology = topology
        self.options = options
        self.reporter = reporter
        self.plan = plan_module.build(topology)
        self.selected = self._selected_services()
        self._uploaded: dict[str, str] = {}
        self.outcomes: list[StackOutcome] = []

    def preflight(self) -> None:
        """Reads what the run needs and checks every input of every stack it will deploy;
        raises PreflightFailed with every problem. Makes no AWS write call."""
        problems: list[str] = []
        directory = self.options.templates_dir
        self.bootstrap = self._bootstrap_outputs()
        self.boundary = (self.options.permissions_boundary
                         or self.bootstrap.get(names.BOUNDARY_EXPORT))
        if not self.boundary:
            problems.append(
                f"no permissions boundary: the bootstrap stack "
                f"{self.topology.bootstrap_stack_name} does not exist; run `python -m "
                "generator bootstrap` first, or pass --permissions-boundary ARN")
        else:
            problems += preflight.boundary_problems(self.boundary)
        self.template_bucket = (self.options.template_bucket
                                or self.bootstrap.get(names.TEMPLATE_BUCKET_EXPORT))
        role_arn = self.options.role_arn or self.bootstrap.get(names.DEPLOY_ROLE_EXPORT)
        self.deployer = StackDeployer(self.cfn, self.reporter, self.options.poll_seconds,
                                      sleep=self.sleep, clock=self.clock,
                                      timeout_seconds=self.options.timeout_seconds,
                                      role_arn=role_arn)
        self.scheduler = Scheduler(self.cfn, self.deployer, self.reporter,
                                   max_parallel=self.options.max_parallel,
                                   poll_seconds=self.options.poll_seconds,
                                   sleep=self.sleep, clock=self.clock,
                                   prefetch=self._prefetch,
                                   read_alarms=self._read_alarms)
        environment = self.topology.environment
        self.params_files = preflight.read_params(
            directory, self.selected, problems, environment.name if environment else None)
        inputs = self.stack_inputs()
        self.before = {stack.stack_name: stack.current for stack in inputs}
        self.templates = preflight.read_templates(
            directory, [files.CLUSTER_TEMPLATE, files.NETWORK_TEMPLATE, files.INGRESS_TEMPLATE,
                        files.SERVICE_TEMPLATE]
            + [stack.template for stack in inputs], problems)
        problems += preflight.stack_problems(inputs, self.templates)
        problems += preflight.size_problems(self.templates.values(), self.template_bucket)
        tls = self.topology.service_connect_tls
        if tls is not None:
            if self.acmpca is None:
                problems.append(f"service_connect_tls.private_ca_arn {tls.private_ca_arn}: "
                                "cannot be checked: no acm-pca client")
            else:
                problems += preflight.ca_problems(self.acmpca, tls.private_ca_arn)
        if problems:
            raise preflight.PreflightFailed(problems)
        self.cluster_template = self.templates[files.CLUSTER_TEMPLATE]
        self.network_template = self.templates[files.NETWORK_TEMPLATE]
        self.ingress_template = self.templates[files.INGRESS_TEMPLATE]
        self.service_template = self.templates[files.SERVICE_TEMPLATE]

    def stack_inputs(self) -> list[preflight.StackInput]:
        """Every stack this run deploys, each as it is now (one DescribeStacks each, in
        parallel: a large app has hundreds)."""
        topology = self.topology
        services = [topology.service(name) for name in self.selected]
        now = self._read_stacks([topology.cluster_stack_name]
                                + [topology.network_stack_name(s) for s in services]
                                + [topology.ingress_stack_name(s) for s in services]
                                + [topology.stack_name(s) for s in services])
        cluster = now[topology.cluster_stack_name]
        given = {name for name, value in self.options.cluster_values.items() if value}
        inputs = [preflight.StackInput(
            topology.cluster_stack_name, files.CLUSTER_TEMPLATE,
            frozenset(given | set(_live(cluster))), hints=CLUSTER_FLAGS,
            state=_new_stack_state(cluster, "the cluster stack does not exist yet"),
            failed_values=previous_parameters(cluster) if recreated(cluster) else {},
            current=cluster)]
        for service in services:
            stack_name = topology.network_stack_name(service)
            inputs.append(preflight.StackInput(
                stack_name, files.NETWORK_TEMPLATE,
                frozenset(params.network_parameters(topology, service)),
                current=now[stack_name]))
        for service in services:
            stack_name = topology.ingress_stack_name(service)
            inputs.append(preflight.StackInput(
                stack_name, files.INGRESS_TEMPLATE,
                frozenset(params.ingress_parameters(topology, service)),
                current=now[stack_name]))
        for service in services:
            if service.name not in self.params_files:
                continue  # its params file's own problem is reported
            stack_name = topology.stack_name(service)
            stack = now[stack_name]
            supplied = set(DEPLOYER_PARAMETERS)
            if self.image_for(service.name) or IMAGE_PARAMETER in _live(stack):
                supplied.add(IMAGE_PARAMETER)
            inputs.append(preflight.StackInput(
                stack_name, files.SERVICE_TEMPLATE, frozenset(supplied),
                params_file=self.params_files[service.name], hints=SERVICE_HINTS,
                state=_new_stack_state(stack, "the stack does not exist yet"), current=stack))
        return inputs

    def _read_stacks(self, stack_names: Sequence[str]) -> dict[str, dict | None]:
        """The stacks as they are now, from one paged DescribeStacks of the account (at most
        20 pages at CloudFormation's default 2,000 stacks) instead of one call per stack:
        a 300-service app has 901 stacks to read."""
        wanted = set(stack_names)
        found: dict[str, dict | None] = {name: None for name in stack_names}
        # Every stack of the app, read by the same listing: the removed services' stacks
        # (prune) and the service stacks still using Service Connect TLS come from it.
        self.app_stacks: dict[str, dict] = {}
        for page in self.cfn.get_paginator("describe_stacks").paginate():
            for stack in page.get("Stacks", []):
                if stack["StackStatus"] == "DELETE_COMPLETE":
                    continue
                if stack["StackName"] in wanted:
                    found[stack["StackName"]] = stack
                tags = {t["Key"]: t["Value"] for t in stack.get("Tags", [])}
                if (tags.get("app") == self.topology.app
                        and tags.get("managed-by") == params.MANAGED_BY):
                    self.app_stacks[stack["StackName"]] = stack
        return found

    def _stack(self, name: str) -> dict | None:
        """The stack as this run last saw it: when it settled after this run changed it,
        else as the preflight's listing read it; no call."""
        if name in self.scheduler.settled:
            return self.scheduler.settled[name]
        return self.before.get(name, self.app_stacks.get(name))

    def _selected_services(self) -> tuple[str, ...]:
        known = [service.name for service in self.topology.services]
        unknown = [name for name in self.options.services if name not in known]
        if unknown:
            raise DeployInputError(f"unknown service(s): {', '.join(unknown)} "
                                   f"(known: {', '.join(known)})")
        strangers = sorted(set(self.options.images) - set(known))
        if strangers:
            raise DeployInputError(f"--images names {', '.join(strangers)}, not in "
                                   f"{self.topology.source} (known: {', '.join(known)})")
        return tuple(self.options.services) or tuple(known)

    def _bootstrap_outputs(self) -> dict[str, str]:
        return stack_outputs(current_stack(self.cfn, self.topology.bootstrap_stack_name))

    @property
    def prunes(self) -> bool:
        # Deploying some services only must not delete the others' stacks.
        return self.options.prune and not self.options.services

    def run(self) -> bool:
        self.preflight()
        removed = self._removed_stacks() if self.prunes else {}
        first = {**removed.get(params.KIND_SERVICE, {}), **removed.get(params.KIND_INGRESS, {})}
        if first:
            self.reporter.say("== removed services: " + ", ".join(sorted(first)))
            if not self._delete_all(first):
                return False
        if not self._deploy_cluster():
            return False
        self.reporter.say("== network, ingress and service stacks: each as soon as the "
                          "stacks it needs are done")
        if not self._schedule(self._stack_jobs(self._deploy_values())):
            return False
        if removed.get(params.KIND_NETWORK):
            self.reporter.say("== network stacks of removed services")
            if not self._delete_all(removed[params.KIND_NETWORK]):
                return False
        return self._retire_tls_role() and self._put_dashboards()

    def _put_dashboards(self) -> bool:
        """Once every stack is deployed: the deployment's dashboards (generator.ops.dashboards)."""
        if self.cloudwatch is None:
            return True
        from generator.ops import dashboards

        failures = dashboards.put(self.cloudwatch, self.topology, self.options.templates_dir,
                                  self.reporter, dry_run=self.options.dry_run)
        self.outcomes.extend(failures)
        return not failures

    def _stack_jobs(self, deploy_values: Mapping[str, str]) -> list[Job]:
        """Every network, ingress and service stack of the run as one graph of jobs:

        - a new network stack (task security group) waits for nothing;
        - an ingress stack waits for the new groups it names (its service's, its callers'
          and its callees'): a caller's group exists before a callee admits it;
        - a network stack that exists waits for its service's ingress stack: a narrower
          outbound rule set (the allow-all rule of earlier versions goes) only once the
          rules to the callees exist, so running tasks never lose a callee;
        - a service stack waits for its network and ingress stacks, its callees' ingress
          stacks (it is admitted before its tasks start), and `_service_jobs`' order.
        A service whose caller rules still live in its service stack (`moving`) gets its
        ingress stack after its service stack, and its network stack after that."""
        existing = set(self._existing_networks())
        moving = self._rules_in_service_stack()
        selected = set(self.selected)

        def new_network(name: str) -> list[str]:
            return [f"network:{name}"] if name in selected and name not in existing else []

        jobs = []
        for name in self.selected:
            service = self.topology.service(name)
            groups = sorted({name, *service.calls,
                             *(caller.name for caller in self.topology.callers(service))})
            ingress_after = [key for group in groups for key in new_network(group)]
            jobs.append(Job(f"network:{name}", self._start(self._network_request, name),
                            (f"ingress:{name}",) if name in existing else ()))
            if name in moving:
                jobs.append(Job(f"ingress:{name}", self._start(
                    self._ingress_request, name, note="now, not before: their caller rules "
                                                      "left the service stack just now"),
                    (f"service:{name}", *ingress_after)))
            else:
                jobs.append(Job(f"ingress:{name}", self._start(self._ingress_request, name),
                                tuple(ingress_after)))
        needs = {name: ([] if name in moving else [f"network:{name}", f"ingress:{name}"])
                 + [f"ingress:{callee}" for callee in self.topology.service(name).calls
                    if callee in selected and callee not in moving]
                 for name in self.selected}
        return jobs + self._service_jobs(deploy_values, moving, needs)

    def _service_jobs(self, deploy_values: Mapping[str, str], moving: set[str],
                      needs: Mapping[str, list[str]]) -> list[Job]:
        """One job per service stack, started when the stacks of the services it calls
        (outside its own cycle) are done and its `needs` are, with their follow-ups: the
        redeploy the rollout rule names once its whole cycle is deployed."""
        selected = set(self.selected)
        cycle_of = {name: cycle for cycle in self.plan.cycles for name in cycle}
        keys_of: dict[str, list[str]] = {}
        redeploys = {}
        for index, wave in enumerate(self.plan.waves):
            for redeploy in rollout.after_wave(self.topology, self.plan, index):
                redeploys[redeploy.service] = redeploy
            for name in wave:
                if name in selected:
                    keys_of[name] = [f"service:{name}"] + (
                        [f"ingress:{name}"] if name in moving else [])
        jobs = []
        # What a caller waits for: the callee's stack jobs, or its bake after them.
        done_keys = {name: keys + ([f"redeploy:{name}"] if name in redeploys else [])
                     for name, keys in keys_of.items()}
        if self.bakes:
            jobs += [Job(f"bake:{name}", self._bake_start(name), tuple(keys), slot=False)
                     for name, keys in done_keys.items()]
            done_keys = {name: [f"bake:{name}"] for name in done_keys}
        for name in (n for wave in self.plan.waves for n in wave if n in selected):
            cycle = cycle_of.get(name, (name,))
            after = [key for callee in self.topology.service(name).calls
                     if callee not in cycle and callee in selected
                     for key in done_keys[callee]]
            jobs.append(Job(f"service:{name}", self._start(
                functools.partial(self._service_request, deploy_values=deploy_values), name),
                tuple(dict.fromkeys(needs[name] + after))))
        for name, redeploy in redeploys.items():
            if name in selected:
                after = [key for member in cycle_of.get(name, (name,)) if member in selected
                         for key in keys_of[member]]
                jobs.append(Job(f"redeploy:{name}", self._redeploy_start(redeploy),
                                tuple(after)))
        return jobs

    # --- bakes --------------------------------------------------------------------------

    @property
    def bakes(self) -> bool:
        return (self.cloudwatch is not None and self.options.bake_seconds != 0
                and not self.options.dry_run)

    def bake_seconds(self, name: str) -> float:
        if self.options.bake_seconds is not None:
            return self.options.bake_seconds
        return self.topology.service(name).alarms.bake_minutes * 60

    def _bake_start(self, name: str):
        """A bake only after a service stack this run updated (it settled after a change
        set ran): a no-op changed nothing to watch, and a new stack has no traffic yet
        (DeployOptions.bake_new_stacks)."""
        def start():
            stack_name = self.topology.stack_name(self.topology.service(name))
            if not self.scheduler.settled.get(stack_name) or not self.bake_seconds(name):
                return None
            created = change_set_type(self.before.get(stack_name)) == "CREATE"
            if created and not self.options.bake_new_stacks:
                return None
            return bake.bake_flow(self.topology, name, self.bake_seconds(name),
                                  self.clock, self.reporter,
                                  self._alarms_before.pop(name, {}))
        return start

    def _read_alarms(self, alarm_names: Sequence[str]) -> dict[str, dict]:
        return bake.read_alarms(self.cloudwatch, alarm_names)

    def _prefetch(self, jobs: Sequence[Job]) -> None:
        self._prefetch_desired_counts(jobs)
        if self.bakes:
            self._prefetch_alarm_states(jobs)

    def _prefetch_alarm_states(self, jobs: Sequence[Job]) -> None:
        """Before service stacks that exist start: their watched alarms' states, in one
        read for the batch (an alarm already in ALARM then gets the bake to recover:
        generator.ops.bake). A new stack's service has no alarms yet."""
        wanted = []
        for job in jobs:
            kind, _, name = job.key.partition(":")
            if (kind == "service" and change_set_type(self._stack(self.topology.stack_name(
                    self.topology.service(name)))) == "UPDATE"):
                wanted.append(name)
        self._alarms_before.update(bake.states_before(self.topology, wanted,
                                                      self._read_alarms, self.reporter))

    # --- what exists -------------------------------------------------------------------

    def _removed_stacks(self) -> dict[str, dict[str, dict]]:
        """kind -> {stack name: stack} of this app's stacks whose service is gone."""
        present = {service.name for service in self.topology.services}
        removed: dict[str, dict[str, dict]] = {}
        for stack in self.app_stacks.values():
            tags = {t["Key"]: t["Value"] for t in stack.get("Tags", [])}
            if (tags.get("kind") in (params.KIND_SERVICE, params.KIND_INGRESS,
                                     params.KIND_NETWORK)
                    and tags.get("service") not in present):
                removed.setdefault(tags["kind"], {})[stack["StackName"]] = stack
        return removed

    def _existing_networks(self) -> list[str]:
        """Selected services whose network stack exists and is updated, not created."""
        return [name for name in self.selected
                if change_set_type(self.before.get(self.topology.network_stack_name(
                    self.topology.service(name)))) == "UPDATE"]

    def _rules_in_service_stack(self) -> set[str]:
        """Selected services whose service stack still holds their caller rules (it has
        the `Callers` parameter of earlier versions) and so must be updated before their
        ingress stack can add the same rules."""
        return {name for name in self.selected
                if names.CALLERS_PARAMETER in _live(self.before.get(
                    self.topology.stack_name(self.topology.service(name))))}

    def _deploy_values(self) -> dict[str, str]:
        """Subnets from the cluster stack as it now is, and the permissions boundary."""
        stack = self._stack(self.topology.cluster_stack_name)
        cluster = previous_parameters(stack)
        cluster_outputs = stack_outputs(stack)
        return {
            names.SUBNETS_PARAMETER: cluster.get(names.PRIVATE_SUBNETS, ""),
            names.LOAD_BALANCER_SUBNETS_PARAMETER: cluster.get(names.PUBLIC_SUBNETS, ""),
            names.BOUNDARY_PARAMETER: self.boundary,
            # Empty when topology.yaml has no service_connect_tls (the cluster stack then
            # has no such role, and no service's Tls block uses it).
            names.TLS_ROLE_PARAMETER: cluster_outputs.get(names.TLS_ROLE_OUTPUT, ""),
        }

    def image_for(self, name: str) -> str | None:
        """topology.yaml's image, else the build's (--images), else --image, else None
        (the stack keeps its current image)."""
        service = self.topology.service(name)
        return service.image or self.options.images.get(name) or self.options.image

    def _promoted_repository(self, image: str | None) -> str:
        """An environment in another account pulls the build's image from the pipeline
        account's repository: its execution role must be allowed that repository (the
        service template allows its own account's pipeline repository only)."""
        environment = self.topology.environment
        repository = ecr_repository_arn(image or "")
        if environment is None or not repository:
            return ""
        return repository if repository.split(":")[4] != environment.account else ""

    def _live_desired_count(self, service_name: str) -> int | None:
        """The ECS service's desiredCount now: read for the jobs about to start, in
        batches (`_prefetch_desired_counts`), each value used once."""
        if self.ecs is None:
            return None
        if service_name not in self._desired_counts:
            self._read_desired_counts([service_name])
        return self._desired_counts.pop(service_name)

    def _prefetch_desired_counts(self, jobs) -> None:
        """Before service jobs start: their services' desiredCount, 10 a call
        (quotas.SERVICES_PER_DESCRIBE_SERVICES), only for stacks that exist."""
        if self.ecs is None:
            return
        wanted = []
        for job in jobs:
            kind, _, name = job.key.partition(":")
            if (kind in ("service", "redeploy") and name not in self._desired_counts
                    and change_set_type(self._stack(self.topology.stack_name(
                        self.topology.service(name)))) == "UPDATE"):
                wanted.append(name)
        self._read_desired_counts(sorted(set(wanted)))

    def _read_desired_counts(self, service_names: Sequence[str]) -> None:
        batch = quotas.SERVICES_PER_DESCRIBE_SERVICES.limit
        for start in range(0, len(service_names), batch):
            chunk = list(service_names[start:start + batch])
            answer = self.ecs.describe_services(cluster=self.topology.cluster_stack_name,
                                                services=chunk)
            counts = {service["serviceName"]: int(service["desiredCount"])
                      for service in answer.get("services", [])
                      if service.get("status") == "ACTIVE"}
            for name in chunk:
                self._desired_counts[name] = counts.get(name)

    # --- templates ---------------------------------------------------------------------

    def _template(self, template: files.Template) -> dict[str, str | None]:
        """TemplateBody, or TemplateURL for a body past the inline limit."""
        body = template.body
        if len(body.encode("utf-8")) <= quotas.TEMPLATE_BODY_BYTES.limit:
            return {"template_body": body}
        url = self._uploaded.get(body)
        if url is None:
            url = upload_template(self.s3, self.template_bucket, body)
            self._uploaded[body] = url
        return {"template_body": body, "template_url": url}

    # --- stacks ------------------------------------------------------------------------

    def _deploy_cluster(self) -> bool:
        name = self.topology.cluster_stack_name
        self.reporter.say(f"== cluster: {name}")
        stack = self._stack(name)
        request = StackRequest(
            name,
            parameters=cluster_parameters(self.cluster_template, stack,
                                          {**self.options.cluster_values,
                                           **self._cluster_identity(),
                                           names.TLS_ROLE_WANTED_PARAMETER:
                                               self._tls_role_wanted()}),
            tags={"app": self.topology.app, "kind": "cluster",
                  "managed-by": params.MANAGED_BY},
            **self._template(self.cluster_template))
        return self._schedule([Job(name, lambda: self.deployer.flow(
            request, stack, preview=self.options.dry_run))])

    def _cluster_identity(self) -> dict[str, str]:
        """Which deployment the shared cluster template is (an environment's app and
        namespace), for the parameters the template declares."""
        values = {names.APP_PARAMETER: self.topology.app,
                  names.NAMESPACE_PARAMETER: self.topology.namespace}
        return {name: value for name, value in values.items()
                if name in self.cluster_template.parameters}

    # --- the Service Connect TLS role: removed only after the services stop using it ---

    def _tls_role_wanted(self) -> str:
        """"true" while topology.yaml has service_connect_tls or a live service stack of
        this app still passes a Private CA (ServiceConnectTlsCaArn); "false" otherwise.

        The Service Connect TLS page's infrastructure-as-code note deletes the role, CA
        and key after the services that use them
        (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-connect-tls.html):
        until their own update, running tasks still get certificates through the role."""
        if self.topology.service_connect_tls:
            return "true"
        for name in self.app_stacks:
            stack = self._stack(name)
            tags = {t["Key"]: t["Value"] for t in (stack or {}).get("Tags", [])}
            if (tags.get("kind") == params.KIND_SERVICE
                    and previous_parameters(stack).get(names.TLS_CA_PARAMETER)):
                return "true"
        return "false"

    def _retire_tls_role(self) -> bool:
        """After the service waves: one more cluster update when the cluster stack still
        keeps the TLS role that no service stack uses any more."""
        stack = self._stack(self.topology.cluster_stack_name)
        if (names.TLS_ROLE_WANTED_PARAMETER not in self.cluster_template.parameters
                or previous_parameters(stack).get(names.TLS_ROLE_WANTED_PARAMETER) != "true"
                or self._tls_role_wanted() == "true"):
            return True
        self.reporter.say("== cluster again: no service uses Service Connect TLS any more, "
                          "so its infrastructure role goes")
        return self._deploy_cluster()

    def _network_request(self, name: str) -> tuple[StackRequest, dict | None]:
        service = self.topology.service(name)
        return self._derived_request(self.topology.network_stack_name(service),
                                     params.network_parameters(self.topology, service),
                                     params.tags(self.topology, service, params.KIND_NETWORK),
                                     self.network_template)

    def _ingress_request(self, name: str) -> tuple[StackRequest, dict | None]:
        service = self.topology.service(name)
        return self._derived_request(self.topology.ingress_stack_name(service),
                                     params.ingress_parameters(self.topology, service),
                                     params.tags(self.topology, service, params.KIND_INGRESS),
                                     self.ingress_template)

    def _derived_request(self, stack_name: str, parameters: Mapping[str, str],
                         tags: Mapping[str, str], template: files.Template
                         ) -> tuple[StackRequest, dict | None]:
        """A stack whose parameters all come from topology.yaml (no params file)."""
        request = StackRequest(stack_name, parameters=parameters, tags=tags,
                               **self._template(template))
        return request, self._stack(stack_name)

    def _service_request(self, name: str, deploy_values: Mapping[str, str]
                         ) -> tuple[StackRequest, dict | None]:
        service = self.topology.service(name)
        stack_name = self.topology.stack_name(service)
        stack = self._stack(stack_name)
        params_file = self.params_files[name]
        live_count = (self._live_desired_count(name)
                      if change_set_type(stack) == "UPDATE" else None)
        image = self.image_for(name)
        values = service_parameters(self.service_template, params_file, stack, image,
                                    params.initial_values(self.topology, service),
                                    deploy_values, live_count)
        pull = self._promoted_repository(image)
        if pull and not values.get(PULL_REPOSITORY_PARAMETER):
            values[PULL_REPOSITORY_PARAMETER] = pull
        request = StackRequest(stack_name, parameters=values,
                               tags=params.tags(self.topology, service),
                               **self._template(self.service_template))
        return request, stack

    def _start(self, build, name: str, note: str = ""):
        """A job's start: `build(name)` at the job's turn (the stack as it is then), an
        optional line about why now, and the stack's flow."""
        def start():
            request, stack = build(name)
            if note:
                self.reporter.line(request.stack_name, note)
            return self.deployer.flow(request, stack, preview=self.options.dry_run)
        return start

    def _redeploy_start(self, redeploy: rollout.Redeploy):
        """The rollout rule's follow-up: a new nonce only where it differs from the stack's."""
        def start():
            service = self.topology.service(redeploy.service)
            stack_name = self.topology.stack_name(service)
            stack = self._stack(stack_name)
            if stack is None or change_set_type(stack) == "CREATE":
                return None  # a service not deployed in this run and never before
            if not rollout.needs_redeploy(previous_parameters(stack).get(NONCE_PARAMETER),
                                          redeploy):
                return None
            callees = ", ".join(rollout.same_wave_callees(self.topology, self.plan,
                                                          redeploy.service))
            verb = "would force" if self.options.dry_run else "forcing"
            self.reporter.line(stack_name, f"{verb} a new deployment: the endpoints it calls "
                                           f"in its own cycle ({callees}) changed")
            if self.options.dry_run:
                return None
            # The template goes with it, as with every update: a stack may still carry an
            # earlier version's AWS::LanguageExtensions transform, under which AWS says to
            # "provide the template instead of using UsePreviousTemplate to ensure new
            # parameter values ... are applied correctly" (UpdateStack's
            # UsePreviousTemplate; transform-aws-languageextensions.html, Remarks).
            values = {key: PREVIOUS for key in previous_parameters(stack)
                      if key in self.service_template.parameters}
            values[NONCE_PARAMETER] = redeploy.nonce
            live_count = self._live_desired_count(redeploy.service)
            if live_count is not None:
                values["DesiredCount"] = str(live_count)
            request = StackRequest(stack_name, parameters=values,
                                   tags=params.tags(self.topology, service),
                                   **self._template(self.service_template))
            return self._redeploy(request, stack)
        return start

    def _redeploy(self, request: StackRequest, stack: dict):
        """A new nonce that changes nothing forced no deployment: that is not a success."""
        outcome = yield from self.deployer.flow(request, stack)
        if outcome.result != "no changes":
            return outcome
        failure = (f"the new {NONCE_PARAMETER} changed nothing, so no new deployment was "
                   "forced; its tasks may still hold the old endpoints")
        self.reporter.line(request.stack_name, failure)
        return StackOutcome(request.stack_name, "failed", failure=failure)

    def _delete_all(self, stacks: Mapping[str, dict]) -> bool:
        if self.options.dry_run:
            for name in sorted(stacks):
                self.reporter.line(name, "dry run: would be deleted (its service was removed)")
            return True
        return self._schedule([
            Job(name, lambda name=name, stack=stack: self.deployer.delete_flow(name, stack))
            for name, stack in sorted(stacks.items())])

    def _schedule(self, jobs: Sequence[Job]) -> bool:
        outcomes = self.scheduler.run(jobs)
        self.outcomes.extend(outcomes)
        return all(outcome.ok for outcome in outcomes)

    def summary(self) -> str:
        rows = [(o.stack_name, o.result, o.failure or _changes_summary(o)) for o in self.outcomes]
        return table(("STACK", "RESULT", "DETAIL"), rows)


def upload_template(s3, bucket: str, body: str) -> str:
    """Put a template under its digest (same bytes, same key) and return its S3 URL."""
    import hashlib

    data = body.encode("utf-8")
    key = f"templates/{hashlib.sha256(data).hexdigest()}.yaml"
    s3.put_object(Bucket=bucket, Key=key, Body=data, ServerSideEncryption="AES256")
    # Path-style URLs work in every partition and with a local endpoint; CloudFormation
    # reads the object with the caller's credentials.
    endpoint = s3.meta.endpoint_url.rstrip("/")
    return f"{endpoint}/{bucket}/{key}"


def _changes_summary(outcome: StackOutcome) -> str:
    if not outcome.changes:
        return ""
    counts: dict[str, int] = {}
    for change in outcome.changes:
        counts[change.action] = counts.get(change.action, 0) + 1
    return ", ".join(f"{count} {action.lower()}" for action, count in sorted(counts.items()))
