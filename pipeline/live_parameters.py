"""The live-parameters snapshot: the carried parameters' current values, per service stack.

CodePipeline's CloudFormation action gives every parameter it is not passed the template
Default (it has no UsePreviousValue), so the operator-owned parameters and the
DeploymentNonce (`generator.params.CARRIED_PARAMETERS`) would be reset on every run.
A CodeBuild action runs this module right before the first service deploy; it writes
`<out>/<service>.json` = {parameter: current value}, and each deploy action reads those
keys with Fn::GetParam. A stack that does not exist yet gets `params.initial_values`.

    python -m pipeline.live_parameters [--topology topology.yaml] [--out live]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Mapping

from generator import params
from generator.topology import DEFAULT_TOPOLOGY, Topology, TopologyError, load

# stack name -> {parameter: value} of the deployed stack, or None when it does not exist.
StackReader = Callable[[str], "Mapping[str, str] | None"]


def carried_values(topology: Topology, read_stack: StackReader) -> dict[str, dict[str, str]]:
    """Service name -> the CARRIED_PARAMETERS to pass on this run's deploy (pure but for read_stack)."""
    result = {}
    for service in topology.services:
        values = params.initial_values(topology, service)
        deployed = read_stack(topology.stack_name(service))
        if deployed is not None:
            # A parameter the deployed template does not know yet keeps its initial value.
            values.update({k: deployed[k] for k in params.CARRIED_PARAMETERS if k in deployed})
        result[service.name] = values
    return result


def cloudformation_reader(client) -> StackReader:
    """Read a stack's parameters with a boto3 CloudFormation client."""
    from botocore.exceptions import ClientError

    def read(stack_name: str):
        try:
            stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as err:
            if "does not exist" in str(err):
                return None
            raise
        stack = stacks[0]
        if stack["StackStatus"] == "REVIEW_IN_PROGRESS":  # a change set that never ran
            return None
        return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}

    return read


def write(out_dir: Path, values: dict[str, dict[str, str]]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for service, carried in sorted(values.items()):
        path = out_dir / f"{service}.json"
        path.write_text(json.dumps(carried, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.live_parameters",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default=DEFAULT_TOPOLOGY, metavar="FILE")
    parser.add_argument("--out", default="live", metavar="DIR")
    args = parser.parse_args(argv)
    try:
        topology = load(args.topology)
    except TopologyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import boto3

    values = carried_values(topology, cloudformation_reader(boto3.client("cloudformation")))
    for path in write(Path(args.out), values):
        print(f"{path}: {json.dumps(values[path.stem], sort_keys=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
