"""`bootstrap`: the pipeline stack from templates/pipeline.yaml, once per account.

After it, the pipeline deploys itself (its UpdatePipeline stage); what is left by hand is
confirming the CodeStar/CodeConnections connection, which AWS only allows in the console.
"""
from __future__ import annotations

import re
from typing import Mapping

from generator.ops import files
from generator.ops.stackflow import PREVIOUS, change_set_type, previous_parameters

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
