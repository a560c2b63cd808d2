"""`bootstrap`: the pipeline stack from templates/pipeline.yaml, once per account.

After it, the pipeline deploys itself (its UpdatePipeline stage); what is left by hand is
confirming the CodeStar/CodeConnections connection, which AWS only allows in the console.

`bootstrap --env NAME [--trust ACCOUNT]`: only the bootstrap stack, from the same
templates/bootstrap.yaml, in the account of environment NAME (topology.yaml's
`environments`), with the credentials of that account; --trust sets its TrustedAccount
parameter, which creates the role the pipeline account's deploy step assumes to deploy
there (generator.stacks.deployer). The caller's account is read with
sts:GetCallerIdentity, which needs no permission
(https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html), and a
mismatch stops the command before any change.
"""
from __future__ import annotations

import re
from typing import Mapping

from generator import names
from generator.ops import files
from generator.ops.stackflow import PREVIOUS, change_set_type, previous_parameters
from generator.topology import Environment, Topology

# bootstrap.yaml's parameter (generator.stacks.deployer.TRUSTED_ACCOUNT; not imported, so
# the boto3 commands do not load troposphere).
TRUSTED_ACCOUNT = "TrustedAccount"
# https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-identifiers.html
ACCOUNT_ID = re.compile(r"^[0-9]{12}$")

CONNECTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:(?P<service>codestar-connections|codeconnections):"
    r"(?P<region>[a-z0-9-]+):(?P<account>\d{12}):connection/(?P<id>[A-Za-z0-9-]+)$")


class BootstrapInputError(Exception):
    """A parameter the operator must give; str() is the one-line message."""


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BootstrapInputError(f"--parameter {pair!r}: expected KEY=VALUE")
        values[key] = value
    return values


def pipeline_parameters(template: files.Template, stack: dict | None,
                        given: Mapping[str, str]) -> dict[str, object]:
    unknown = sorted(set(given) - set(template.parameters))
    if unknown:
        raise BootstrapInputError(
            f"{template.path}: no parameter {', '.join(unknown)} "
            f"(parameters: {', '.join(template.parameters) or 'none'})")
    live = previous_parameters(stack) if change_set_type(stack) == "UPDATE" else {}
    values: dict[str, object] = {}
    missing = []
    for name in template.parameters:
        if name in given:
            values[name] = given[name]
        elif name in live:
            values[name] = PREVIOUS  # an update keeps what the stack has
        elif not template.has_default(name):
            missing.append(name)
    if missing:
        raise BootstrapInputError(
            f"{template.path}: the pipeline stack does not exist yet; pass "
            + " ".join(f"--parameter {name}=..." for name in missing))
    return values


def connection_arns(stack: dict | None) -> list[str]:
    """Connection ARNs the stack was given as parameters or reports as outputs."""
    if not stack:
        return []
    values = [p.get("ParameterValue", "") for p in stack.get("Parameters", [])]
    values += [o.get("OutputValue", "") for o in stack.get("Outputs", [])]
    return sorted({value for value in values if CONNECTION_ARN.match(value)})


def console_link(arn: str) -> str:
    match = CONNECTION_ARN.match(arn)
    region, account, connection = match["region"], match["account"], match["id"]
    return (f"https://{region}.console.aws.amazon.com/codesuite/settings/{account}/{region}"
            f"/connections/{connection}")


def connection_service(arn: str) -> str:
    """The boto3 client for a connection: the ARN's own service prefix. Connections made
    since July 2024 are codeconnections, older ones codestar-connections, and IAM matches a
    policy's prefix against the resource's
    (https://docs.aws.amazon.com/dtconsole/latest/userguide/rename.html)."""
    return CONNECTION_ARN.match(arn)["service"]


def connection_status(client, arn: str) -> str:
    """PENDING, AVAILABLE, ERROR, or 'unknown' when it cannot be read."""
    try:
        return client.get_connection(ConnectionArn=arn)["Connection"]["ConnectionStatus"]
    except Exception:  # the reminder below is still right whatever went wrong here
        return "unknown"


def next_steps(arns: list[str], statuses: Mapping[str, str], pipeline_stack: str) -> list[str]:
    lines = []
    for arn in arns:
        status = statuses.get(arn, "unknown")
        if status == "AVAILABLE":
            lines.append(f"connection {arn} is AVAILABLE; nothing to confirm")
            continue
        state = "status could not be read" if status == "unknown" else f"is {status}"
        lines.append(f"to do by hand: connection {state}; a connection created by "
                     "CloudFormation or the CLI stays PENDING until someone confirms it in "
                     "the console (Update pending connection -> install or choose the app):")
        lines.append(f"  {console_link(arn)}")
    if not arns:
        lines.append("to do by hand: confirm the pipeline's source connection in the console "
                     "(Developer Tools > Settings > Connections) if it is PENDING")
    lines.append(f"then push to the pipeline's branch, or release a change on the pipeline "
                 f"of stack {pipeline_stack}, to run it")
    return lines


# --- bootstrap --env NAME --trust ACCOUNT ---------------------------------------------------


def trusted_account(value: str) -> str:
    if not ACCOUNT_ID.match(value):
        raise BootstrapInputError(f"--trust {value!r}: not a 12-digit AWS account ID")
    return value


def environment(topology: Topology, name: str) -> Environment:
    known = [e.name for e in topology.environments]
    if not known:
        raise BootstrapInputError(f"{topology.source}: --env {name}: the topology has no "
                                  "environments")
    if name not in known:
        raise BootstrapInputError(f"{topology.source}: --env {name}: no such environment "
                                  f"(environments: {', '.join(known)})")
    return next(e for e in topology.environments if e.name == name)


def check_account(topology: Topology, env: Environment, caller_account: str) -> None:
    """The bootstrap stack goes into the caller's account: it must be the environment's."""
    if caller_account != env.account:
        raise BootstrapInputError(
            f"{topology.source}: environments.{env.name}.account is {env.account}, but the "
            f"credentials are of account {caller_account}; use credentials of {env.account} "
            "(--profile)")


def check_region(topology: Topology, env: Environment, region: str | None) -> str:
    if region and region != env.region:
        raise BootstrapInputError(
            f"{topology.source}: environments.{env.name}.region is {env.region}, not "
            f"--region {region}")
    return env.region


def bootstrap_parameters(template: files.Template, stack: dict | None,
                         trust: str | None) -> dict[str, object]:
    """TrustedAccount: the one given; else, on an update, the stack's own (so that a plain
    `bootstrap` never drops the deployer role); else the template's default (none)."""
    if TRUSTED_ACCOUNT not in template.parameters:
        if trust is not None:
            raise BootstrapInputError(
                f"{template.path}: no {TRUSTED_ACCOUNT} parameter (rendered from a topology "
                "without environments?); run `python -m generator generate`")
        return {}
    if trust is not None:
        return {TRUSTED_ACCOUNT: trust}
    if change_set_type(stack) == "UPDATE" and TRUSTED_ACCOUNT in previous_parameters(stack):
        return {TRUSTED_ACCOUNT: PREVIOUS}
    return {}


def deployer_summary(topology: Topology, env: Environment, stack: dict | None) -> str:
    trusted = previous_parameters(stack).get(TRUSTED_ACCOUNT, "")
    if not trusted:
        return (f"no environment deployer role in {env.account} (TrustedAccount is empty): "
                "the pipeline deploys here only from this account")
    arn = names.environment_deployer_role_arn(topology.project_app, env.account)
    return (f"environment deployer {arn}: assumable by the deploy step of "
            f"{topology.pipeline_stack_name} in account {trusted}")
