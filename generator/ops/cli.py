"""bootstrap, deploy, verify, status and logs for `python -m generator`.

Exit codes, as for the other commands: 0 ok; 1 a failed deploy or check (or AWS refused
the operation); 2 bad input: flags, files, credentials, region, permissions.
boto3 is imported inside the handlers, so `generate` and `lint` never load it.
"""
from __future__ import annotations

import argparse
import functools
import re

import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_TEMPLATES = "templates"


def register(commands, with_topology) -> None:
    bootstrap = _with_aws(with_topology(commands.add_parser(
        "bootstrap", help="create or update the bootstrap and pipeline stacks "
                          "(templates/bootstrap.yaml, pipeline.yaml); with --env, only the "
                          "bootstrap stack, in that environment's account")))
    bootstrap.add_argument("--stack-name", metavar="NAME",
                           help="pipeline stack name (default: <app>-pipeline)")
    bootstrap.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                           help="a pipeline template parameter, e.g. ConnectionArn=arn:...; "
                                "repeatable; an update keeps the values not given")
    bootstrap.add_argument("--yes", action="store_true",
                           help="execute the change set without asking")
    bootstrap.add_argument("--env", metavar="NAME",
                           help="an environment of topology.yaml: create or update only the "
                                "bootstrap stack, in its account (the credentials' account "
                                "must be it)")
    bootstrap.add_argument("--trust", metavar="ACCOUNT",
                           help="with --env: the pipeline's account, whose deploy step may "
                                "then deploy this environment (creates the environment "
                                "deployer role; an update keeps the value when not given)")
    _with_templates(bootstrap)
    bootstrap.set_defaults(handler=_guarded(cmd_bootstrap))

    deploy = _with_env(_with_aws(with_topology(commands.add_parser(
        "deploy", help="deploy the cluster and service stacks in deploy order, without the "
                       "pipeline"))))
    deploy.add_argument("services", nargs="*", metavar="SERVICE",
                        help="deploy only these services (default: all); the cluster stack "
                             "always comes first")
    deploy.add_argument("--image", metavar="URI", type=_image_reference,
                        help="container image for the services that neither topology.yaml "
                             "(image:) nor --images gives one; default: each stack keeps its "
                             "current image (required for a new stack)")
    deploy.add_argument("--images", metavar="FILE",
                        help="JSON object service -> image URI, as the Build stage writes "
                             "it (images.json); a service's topology image wins over it")
    deploy.add_argument("--vpc-id", metavar="VPC", type=_vpc_id,
                        help="cluster VpcId (first deploy)")
    deploy.add_argument("--subnets", metavar="IDS", type=_subnet_ids(minimum=1),
                        help="cluster PrivateSubnetIds, comma-separated, in at least two "
                             "Availability Zones (first deploy)")
    deploy.add_argument("--public-subnets", metavar="IDS", type=_subnet_ids(minimum=2),
                        help="cluster PublicSubnetIds, comma-separated, at least two in "
                             "different Availability Zones, when a service is public "
                             "(first deploy)")
    deploy.add_argument("--max-parallel", type=_positive_int, default=None, metavar="N",
                        help="stacks in flight at once; each starts as soon as the "
                             "services it calls are done (default: 32)")
    deploy.add_argument("--calls-per-second", type=_non_negative_float, default=None,
                        metavar="R",
                        help="pace CloudFormation calls to at most R a second; 0 does not "
                             "pace (default: 5, an assumed rate: AWS publishes none)")
    deploy.add_argument("--bake-minutes", type=_non_negative_float, default=None,
                        metavar="N",
                        help="after a service stack this run changed, watch its alarms and "
                             "those of the edges into it this long before its callers go "
                             "on; an alarm in ALARM stops the run; 0 does not bake "
                             "(default: each service's topology.yaml alarms.bake_minutes, 5)")
    deploy.add_argument("--timeout", type=_positive_int, default=60, metavar="MINUTES",
                        help="stop waiting for a stack after this long and fail the run; "
                             "CloudFormation carries on (default: 60)")
    deploy.add_argument("--dry-run", action="store_true",
                        help="create every change set, show its changes, delete it: "
                             "nothing is executed")
    deploy.add_argument("--role-arn", metavar="ARN",
                        help="role CloudFormation acts with (default: the bootstrap stack's "
                             "deploy role, if it exists)")
    deploy.add_argument("--template-bucket", metavar="NAME",
                        help="bucket for templates over 51,200 bytes (default: the bootstrap "
                             "stack's bucket)")
    deploy.add_argument("--permissions-boundary", metavar="ARN",
                        help="permissions boundary of the roles the service stacks create "
                             "(default: the bootstrap stack's)")
    deploy.add_argument("--no-prune", dest="prune", action="store_false",
                        help="keep the stacks of services removed from the topology")
    _with_templates(deploy)
    deploy.set_defaults(handler=_guarded(cmd_deploy))

    verify = _with_env(_with_aws(with_topology(commands.add_parser(
        "verify", help="exit 0 if every stack, ECS service and Service Connect endpoint is "
                       "healthy; else 1 with a table of what is wrong"))))
    verify.add_argument("--wait", type=_non_negative_int, default=0, metavar="MINUTES",
                        help="check again every --poll-seconds until all is well or this "
                             "long has passed (default: 0, check once)")
    verify.set_defaults(handler=_guarded(cmd_verify))

    status = _with_env(_with_aws(with_topology(commands.add_parser(
        "status", help="one row per service: stack, tasks, rollout, endpoint, last event; "
                       "then each service's and edge's alarm states and recent rates "
                       "(requests a minute, 5xx %%, p99 latency), those in ALARM first"))))
    status.add_argument("--since", default="5m", metavar="DURATION",
                        help="the window of the rates: 5m, 30m, 2h, 1d, whole minutes "
                             "(default: 5m)")
    status.set_defaults(handler=_guarded(cmd_status))

    logs = _with_env(_with_aws(with_topology(commands.add_parser(
        "logs", help="a service's log lines from CloudWatch Logs (the app's, or its Service "
                     "Connect proxy's with --proxy)"))))
    logs.add_argument("service", metavar="SERVICE", help="a service of topology.yaml")
    logs.add_argument("--since", default="10m", metavar="DURATION",
                      help="how far back to start: 30s, 10m, 2h, 1d (default: 10m)")
    logs.add_argument("--follow", "-f", action="store_true",
                      help="keep printing new lines until interrupted (Ctrl-C)")
    logs.add_argument("--proxy", action="store_true",
                      help="the Service Connect proxy's lines instead of the app's")
    logs.set_defaults(handler=_guarded(cmd_logs))


def _with_aws(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
    group = sub.add_argument_group("AWS")
    group.add_argument("--region", help="AWS region (default: AWS_REGION or the profile's)")
    group.add_argument("--profile", help="AWS profile (default: AWS_PROFILE or default)")
    group.add_argument("--endpoint-url", metavar="URL",
                       help="send every AWS call to URL (local testing against moto or "
                            "LocalStack); AWS_ENDPOINT_URL does the same")
    group.add_argument("--max-attempts", type=_positive_int, metavar="N",
                       help="attempts per AWS call, throttling included, with botocore's "
                            "backoff (default: AWS_MAX_ATTEMPTS or 8)")
    group.add_argument("--poll-seconds", type=float, default=5.0, metavar="S",
                       help="seconds between polls of a stack's events (default: 5)")
    return sub


def _with_env(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sub.add_argument("--env", metavar="NAME",
                     help="the environment of topology.yaml to act on (its account, region, "
                          "network and values); required when the file has environments")
    return sub


def _with_templates(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--templates", default=DEFAULT_TEMPLATES, metavar="DIR",
                     help=f"generated templates and params/ (default: {DEFAULT_TEMPLATES})")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a number, 0 or more")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _guarded(handler):
    """Turns the exceptions an operator can act on into `error: <one line>` and an exit code."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from generator.ops.aws import explain
        from generator.ops.bootstrap import BootstrapInputError
        from generator.ops.deploy import DeployInputError
        from generator.ops.files import FilesProblem
        from generator.ops.preflight import PreflightFailed

        try:
            return handler(args)
        except (FilesProblem, DeployInputError, BootstrapInputError, PreflightFailed) as err:
            return _fail(str(err), EXIT_BAD_INPUT)
        except Exception as err:
            problem = explain(err)
            if problem is None:
                raise
            return _fail(str(problem), problem.exit_code)

    return run


def _fail(message: str, code: int) -> int:
    # A preflight reports every problem it found, one line each.
    for line in message.splitlines() or [""]:
        print(f"error: {line}", file=sys.stderr)
    return code


def _topology(args):
    """topology.yaml, or the environment --env names of it (one line if they do not fit)."""
    from generator import topology

    return topology.select(topology.load(args.topology), getattr(args, "env", None))


def _project_topology(args):
    """topology.yaml as a whole: the bootstrap and pipeline stacks are the project's, shared
    by its environments."""
    from generator import topology

    return topology.load(args.topology)


def _aws(args, topology=None, role: str = "reader"):
    """Clients for the topology's account: an environment's region, and its deployer role
    when these credentials belong to another account (generator.ops.aws.for_environment)."""
    from generator.ops.aws import AwsProblem, connect, for_environment

    environment = topology.environment if topology is not None else None
    region = args.region
    if environment is not None:
        if region and region != environment.region:
            raise AwsProblem(f"--region {region}: environment {environment.name} is in "
                             f"{environment.region} ({topology.source}); drop --region", 2)
        region = environment.region
    aws = connect(region, args.profile, args.endpoint_url or None, args.max_attempts)
    if environment is None:
        return aws
    return for_environment(aws, topology, say=print, role=role)


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(text)


def _image_reference(text: str) -> str:
    from generator.topology import IMAGE_REFERENCE_PATTERN, MAX_IMAGE_REFERENCE

    if len(text) > MAX_IMAGE_REFERENCE or not re.match(IMAGE_REFERENCE_PATTERN, text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an image reference ([registry/]repository[:tag][@digest])")
    return text


def _images_file(path: str | None) -> dict:
    """{service: image}; every value an image reference (the deployer checks the keys)."""
    import json

    from generator.ops.deploy import DeployInputError

    if path is None:
        return {}
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeployInputError(f"--images {path}: not found") from None
    except (OSError, ValueError) as err:
        raise DeployInputError(f"--images {path}: cannot read: {err}") from None
    if not isinstance(document, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in document.items()):
        raise DeployInputError(f'--images {path}: expected {{"<service>": "<image>", ...}}')
    for service, image in document.items():
        try:
            _image_reference(image)
        except argparse.ArgumentTypeError as err:
            raise DeployInputError(f"--images {path}: {service}: {err}") from None
    return document


_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")


def _vpc_id(text: str) -> str:
    if not _VPC_ID.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a VPC id (vpc-0123abcd...)")
    return text


def _subnet_ids(minimum: int):
    def parse(text: str) -> str:
        ids = [part.strip() for part in text.split(",") if part.strip()]
        bad = [part for part in ids if not _SUBNET_ID.match(part)]
        if bad:
            raise argparse.ArgumentTypeError(f"{bad[0]!r} is not a subnet id (subnet-0123abcd...)")
        if len(ids) < minimum:
            # The seed deployment's load balancer had one subnet; an ALB needs two AZs.
            raise argparse.ArgumentTypeError(
                f"needs at least {minimum} subnet ids in different Availability Zones, "
                f"got {len(ids)}")
        return ",".join(ids)

    return parse


# --- commands ----------------------------------------------------------------------------


def cmd_deploy(args: argparse.Namespace) -> int:
    from generator import names, params
    from generator.ops.deploy import Deployment, DeployOptions
    from generator.ops.report import Reporter

    topology = _topology(args)
    aws = _aws(args, topology, role="deployer")
    # An environment's network is in topology.yaml; the flags still win.
    network = params.cluster_parameters(topology)
    options = DeployOptions(
        templates_dir=Path(args.templates),
        services=tuple(args.services),
        image=args.image,
        images=_images_file(args.images),
        cluster_values={names.VPC_ID: args.vpc_id or network.get(names.VPC_ID),
                        names.PRIVATE_SUBNETS: args.subnets
                        or network.get(names.PRIVATE_SUBNETS),
                        names.PUBLIC_SUBNETS: args.public_subnets
                        or network.get(names.PUBLIC_SUBNETS)},
        poll_seconds=args.poll_seconds,
        **({"max_parallel": args.max_parallel} if args.max_parallel else {}),
        **({"calls_per_second": args.calls_per_second}
           if args.calls_per_second is not None else {}),
        dry_run=args.dry_run,
        timeout_seconds=args.timeout * 60,
        role_arn=args.role_arn,
        template_bucket=args.template_bucket,
        permissions_boundary=args.permissions_boundary,
        prune=args.prune,
        **({"bake_seconds": args.bake_minutes * 60} if args.bake_minutes is not None
           else {}),
    )
    width = max(len(topology.cluster_stack_name),
                *(len(topology.network_stack_name(s)) for s in topology.services))
    reporter = Reporter(sys.stdout, name_width=width)
    deployment = Deployment(aws.client("cloudformation"), topology, options, reporter,
                            ecs=aws.client("ecs"), s3=aws.client("s3"),
                            acmpca=aws.client("acm-pca"), cloudwatch=aws.client("cloudwatch"))
    reporter.say(f"deploying {topology.app} to {aws.region}")
    succeeded = deployment.run()
    reporter.say()
    reporter.say(deployment.summary().rstrip())
    if not succeeded:
        failed = [o for o in deployment.outcomes if not o.ok]
        first = failed[0]
        # A bake's failure says whose callers were held back (generator.ops.bake).
        consequence = getattr(first, "consequence", "") or "later stacks were not deployed"
        return _fail(f"deploy failed: {first.stack_name}: {first.failure.rstrip('.')}; "
                     f"{consequence}", EXIT_FAILED)
    if args.dry_run:
        reporter.say("dry run complete: nothing was executed; service change sets were made "
                     "against the stacks as they are now")
        return EXIT_OK
    reporter.say("deploy complete; run `python -m generator verify` to check the services "
                 "reach each other")
    return EXIT_OK


def _observe(args: argparse.Namespace):
    """(topology, aws, cluster stack or None, per-service states): what verify and status read."""
    from generator.ops import inspect

    topology = _topology(args)
    aws = _aws(args, topology)
    cluster, states = inspect.gather(aws.client("cloudformation"), aws.client("ecs"),
                                     aws.client("servicediscovery"), topology)
    return topology, aws, cluster, states


def cmd_verify(args: argparse.Namespace) -> int:
    import time

    from generator.ops import health, inspect

    def check():
        topology, aws, _, states = _observe(args)
        alarms = health.alarm_problems(aws.client("cloudwatch"), topology)
        return topology, aws, states, alarms, inspect.verify_table(states, alarms)

    # Right after a deploy, Cloud Map health and task counts can lag a little behind.
    deadline = time.monotonic() + args.wait * 60
    topology, aws, states, alarms, report = check()
    while report and time.monotonic() < deadline:
        time.sleep(args.poll_seconds)
        topology, aws, states, alarms, report = check()
    if report:
        count = sum(len(inspect.problems(state)) for state in states) + len(alarms)
        print(f"verify: {count} problem(s) in {topology.app} ({aws.region})")
        print(report, end="")
        return EXIT_FAILED
    print(f"verify: OK: {len(states)} service(s) in {topology.app} ({aws.region}): stacks "
          f"complete, running = desired, rollouts COMPLETED, every endpoint healthy in "
          f"Cloud Map namespace {topology.namespace}, no alarm in ALARM")
    if topology.environment is not None and topology.environment.test_commands:
        return _run_test_commands(topology, aws)
    return EXIT_OK


def _run_test_commands(topology, aws) -> int:
    from generator.ops import testcommands
    from generator.ops.stackflow import current_stack, stack_outputs

    cfn = aws.client("cloudformation")
    values = testcommands.variables(
        topology, stack_outputs(current_stack(cfn, topology.cluster_stack_name)),
        {s.name: stack_outputs(current_stack(cfn, topology.stack_name(s)))
         for s in topology.services})
    try:
        testcommands.run(topology.environment.test_commands, values, sys.stdout)
    except testcommands.TestCommandFailed as err:
        return _fail(f"verify: environment {topology.environment.name}: {err}", EXIT_FAILED)
    print(f"verify: environment {topology.environment.name}: "
          f"{len(topology.environment.test_commands)} test command(s) passed")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from generator import names
    from generator.ops import health, inspect
    from generator.ops.stackflow import stack_outputs

    try:
        since = _status_since(args.since)
    except ValueError as err:
        return _fail(str(err), EXIT_BAD_INPUT)
    topology, aws, cluster, states = _observe(args)
    cluster_status = cluster["StackStatus"] if cluster else "does not exist"
    print(f"{topology.app} in {aws.region}: cluster stack {topology.cluster_stack_name} "
          f"{cluster_status}, namespace {topology.namespace}")
    print(inspect.status_table(states), end="")
    # The cluster is named after its stack (cluster.yaml); its output says so once deployed.
    cluster_name = stack_outputs(cluster).get(names.CLUSTER_NAME, topology.cluster_stack_name)
    found = health.gather(aws.client("cloudwatch"), topology, cluster_name, since)
    print()
    print(health.services_table(found), end="")
    if found.edges:
        print()
        print(health.edges_table(found), end="")
    print()
    # Last, so that it is what a terminal shows after 300 rows.
    print(health.summary(found))
    return EXIT_OK


def _status_since(text: str) -> int:
    from generator.ops import health, logs

    try:
        seconds = logs.parse_since(text)
    except logs.LogsInputError as err:
        raise ValueError(str(err)) from None
    if seconds > health.MAX_SINCE_SECONDS:
        raise ValueError(f"--since {text!r}: longer than the 15 days CloudWatch keeps "
                         "one-minute data points")
    return seconds


def cmd_logs(args: argparse.Namespace) -> int:
    from generator.ops import logs
    from generator.ops.stackflow import current_stack, stack_outputs

    topology = _topology(args)
    try:
        since = logs.parse_since(args.since)
        service = topology.service(args.service)
    except logs.LogsInputError as err:
        return _fail(str(err), EXIT_BAD_INPUT)
    except KeyError:
        known = ", ".join(s.name for s in topology.services)
        return _fail(f"{args.service}: not a service of {topology.source} (known: {known})",
                     EXIT_BAD_INPUT)
    aws = _aws(args, topology)
    stack_name = topology.stack_name(service)
    group = stack_outputs(current_stack(aws.client("cloudformation"), stack_name)).get(
        "LogGroupName")
    if not group:
        return _fail(f"{stack_name}: no such stack with a LogGroupName output in "
                     f"{aws.region}: deploy the service first (python -m generator status "
                     "shows what exists)", EXIT_FAILED)
    prefix = logs.PROXY_STREAMS if args.proxy else logs.APP_STREAMS
    try:
        logs.tail(aws.client("logs"), group, prefix, since, sys.stdout, follow=args.follow,
                  poll_seconds=args.poll_seconds)
    except KeyboardInterrupt:
        pass  # --follow ends with Ctrl-C; that is success
    except Exception as err:
        from generator.ops.aws import error_code

        # FilterLogEvents of a group that is gone: deleted outside CloudFormation, which
        # does not notice (API_FilterLogEvents.html: ResourceNotFoundException).
        if error_code(err) != "ResourceNotFoundException":
            raise
        return _fail(f"log group {group} does not exist in {aws.region}, though stack "
                     f"{stack_name} names it (LogGroupName output): it was deleted outside "
                     "CloudFormation", EXIT_FAILED)
    return EXIT_OK


def cmd_bootstrap(args: argparse.Namespace) -> int:
    """The bootstrap stack (deploy role, permissions boundary, template bucket), then the
    pipeline stack, which CloudFormation deploys with that role from then on."""
    from generator import names
    from generator.ops import bootstrap, files
    from generator.ops.deploy import upload_template
    from generator.awsfacts import quotas
    from generator.ops.report import Reporter
    from generator.ops.stackflow import StackDeployer, StackRequest, current_stack, stack_outputs

    if args.env is not None or args.trust is not None:
        return _bootstrap_environment(args)
    topology = _project_topology(args)
    given = bootstrap.parse_assignments(args.parameter)
    template = files.read_template(Path(args.templates), files.PIPELINE_TEMPLATE)
    bootstrap_template = files.read_template(Path(args.templates), files.BOOTSTRAP_TEMPLATE)
    if not args.yes and not _interactive():
        raise bootstrap.BootstrapInputError(
            "stdin is not a terminal, so the change set cannot be confirmed; pass --yes")
    aws = _aws(args)
    if topology.service_connect_tls is not None:
        # The pipeline deploys services that need this CA: refuse before the first write.
        from generator.ops.preflight import PreflightFailed, ca_problems

        problems = ca_problems(aws.client("acm-pca"), topology.service_connect_tls.private_ca_arn)
        if problems:
            raise PreflightFailed(problems)
    cfn = aws.client("cloudformation")
    stack_name = args.stack_name or topology.pipeline_stack_name
    base_name = topology.bootstrap_stack_name
    tags = {"app": topology.app, "managed-by": "ecs-service-connect-kit"}
    reporter = Reporter(sys.stdout, name_width=max(len(stack_name), len(base_name)))
    confirm = None if args.yes else _ask_to_execute
    # Preflight: a missing pipeline parameter is found before the bootstrap stack changes.
    bootstrap.pipeline_parameters(template, current_stack(cfn, stack_name), given)
    # Deployed with the caller's own (administrator) credentials: it creates the role that
    # every later stack operation runs as, which no stack may change itself.
    base = current_stack(cfn, base_name)
    outcome = StackDeployer(cfn, reporter, args.poll_seconds).deploy(
        StackRequest(base_name, bootstrap_template.body,
                     bootstrap.bootstrap_parameters(bootstrap_template, base, None),
                     {**tags, "kind": "bootstrap"}),
        base, confirm)
    if outcome.result == "declined":
        return EXIT_FAILED
    if not outcome.ok:
        return _fail(f"bootstrap failed: {base_name}: {outcome.failure}", EXIT_FAILED)
    outputs = stack_outputs(current_stack(cfn, base_name))
    stack = current_stack(cfn, stack_name)
    body = template.body
    url = None
    if len(body.encode("utf-8")) > quotas.TEMPLATE_BODY_BYTES.limit:
        bucket = outputs.get(names.TEMPLATE_BUCKET_EXPORT)
        if not bucket:
            return _fail(f"{template.path}: over {quotas.TEMPLATE_BODY_BYTES.limit:,} bytes and "
                         f"{base_name} has no {names.TEMPLATE_BUCKET_EXPORT} output", EXIT_FAILED)
        url = upload_template(aws.client("s3"), bucket, body)
    request = StackRequest(stack_name, body,
                           bootstrap.pipeline_parameters(template, stack, given),
                           {**tags, "kind": "pipeline"}, template_url=url)
    deployer = StackDeployer(cfn, reporter, args.poll_seconds,
                             role_arn=outputs.get(names.DEPLOY_ROLE_EXPORT) or None)
    outcome = deployer.deploy(request, stack, confirm)
    if outcome.result == "declined":
        return EXIT_FAILED
    if not outcome.ok:
        return _fail(f"bootstrap failed: {stack_name}: {outcome.failure}", EXIT_FAILED)
    deployed = current_stack(cfn, stack_name)
    arns = bootstrap.connection_arns(deployed)
    clients = {service: aws.client(service)
               for service in {bootstrap.connection_service(arn) for arn in arns}}
    statuses = {arn: bootstrap.connection_status(clients[bootstrap.connection_service(arn)], arn)
                for arn in arns}
    for line in bootstrap.next_steps(arns, statuses, stack_name):
        print(line)
    return EXIT_OK


def _bootstrap_environment(args: argparse.Namespace) -> int:
    """`bootstrap --env NAME [--trust ACCOUNT]`: the bootstrap stack alone, in the
    environment's account; every input is checked before the first change."""
    from generator.ops import bootstrap, files
    from generator.ops.report import Reporter
    from generator.ops.stackflow import StackDeployer, StackRequest, current_stack

    if args.env is None:
        raise bootstrap.BootstrapInputError("--trust needs --env NAME (the environment whose "
                                            "account trusts the pipeline's)")
    trust = None if args.trust is None else bootstrap.trusted_account(args.trust)
    if args.parameter or args.stack_name:
        raise bootstrap.BootstrapInputError("--parameter and --stack-name are the pipeline "
                                            "stack's; bootstrap --env creates only the "
                                            "bootstrap stack")
    topology = _project_topology(args)
    env = bootstrap.environment(topology, args.env)
    region = bootstrap.check_region(topology, env, args.region)
    template = files.read_template(Path(args.templates), files.BOOTSTRAP_TEMPLATE)
    if not args.yes and not _interactive():
        raise bootstrap.BootstrapInputError(
            "stdin is not a terminal, so the change set cannot be confirmed; pass --yes")
    from generator.ops.aws import connect

    aws = connect(region, args.profile, args.endpoint_url or None, args.max_attempts)
    bootstrap.check_account(topology, env, aws.client("sts").get_caller_identity()["Account"])
    cfn = aws.client("cloudformation")
    name = topology.bootstrap_stack_name
    stack = current_stack(cfn, name)
    request = StackRequest(name, template.body,
                           bootstrap.bootstrap_parameters(template, stack, trust),
                           {"app": topology.project_app, "managed-by": "ecs-service-connect-kit",
                            "kind": "bootstrap"})
    # The caller's own (administrator) credentials, as for the pipeline account's: the stack
    # creates the roles later operations run as.
    outcome = StackDeployer(cfn, Reporter(sys.stdout, name_width=len(name)),
                            args.poll_seconds).deploy(request, stack,
                                                      None if args.yes else _ask_to_execute)
    if outcome.result == "declined":
        return EXIT_FAILED
    if not outcome.ok:
        return _fail(f"bootstrap failed: {name}: {outcome.failure}", EXIT_FAILED)
    print(bootstrap.deployer_summary(topology, env, current_stack(cfn, name)))
    return EXIT_OK


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _ask_to_execute(changes) -> bool:
    answer = input(f"Execute this change set ({len(changes)} change(s))? [y/N] ")
    return answer.strip().lower() in ("y", "yes")



