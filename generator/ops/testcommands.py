"""An environment's `test_commands`, run by `verify --env NAME` once verify finds it healthy.

Each command is a shell command of the topology's authors (like a CodeBuild buildspec
line), run in order with the environment's stack outputs as variables; the first that
fails fails verify, and with it the pipeline's Verify action, before any later
environment is deployed.

Variables: APP, ENVIRONMENT, NAMESPACE, CLUSTER_NAME; per service (name upper-cased, '-' as
'_'): <SERVICE>_ENDPOINT (its Service Connect URL, reachable from inside the VPC only),
<SERVICE>_URL (its load balancer's URL, public services only), and every output of its
stack as <SERVICE>_<OUTPUT> (LoadBalancerUrl -> WEB_LOAD_BALANCER_URL).
"""
from __future__ import annotations

import os
import re
import subprocess
from typing import Mapping, TextIO

from generator import names
from generator.topology import Topology

DEFAULT_TIMEOUT_SECONDS = 600


class TestCommandFailed(Exception):
    """str() is the one-line message."""


def _variable(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _snake(output: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", output).upper()


def variables(topology: Topology, cluster_outputs: Mapping[str, str],
              service_outputs: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    values = {"APP": topology.app, "NAMESPACE": topology.namespace,
              "ENVIRONMENT": topology.environment.name if topology.environment else "",
              "CLUSTER_NAME": cluster_outputs.get(names.CLUSTER_NAME, "")}
    for service in topology.services:
        prefix = _variable(service.name)
        values[f"{prefix}_ENDPOINT"] = topology.endpoint(service)
        outputs = service_outputs.get(service.name, {})
        for output, value in outputs.items():
            values[f"{prefix}_{_snake(output)}"] = value
        if outputs.get("LoadBalancerUrl"):
            values[f"{prefix}_URL"] = outputs["LoadBalancerUrl"]
    return values


def run(commands: tuple[str, ...], values: Mapping[str, str], out: TextIO,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
    """Each command in order, in a shell, with `values` added to the environment."""
    environment = {**os.environ, **values}
    for index, command in enumerate(commands, start=1):
        out.write(f"test command {index}/{len(commands)}: {command}\n")
        out.flush()
        try:
            finished = subprocess.run(command, shell=True, env=environment,  # noqa: S602
                                      timeout=timeout_seconds, check=False)
        except subprocess.TimeoutExpired:
            raise TestCommandFailed(f"test command {index} timed out after "
                                    f"{timeout_seconds:.0f} s: {command}") from None
        if finished.returncode != 0:
            raise TestCommandFailed(f"test command {index} failed (exit "
                                    f"{finished.returncode}): {command}")
