"""The checks every section of topology.yaml shares: one error type, one message shape.

Every error names the file and the field (`topology.yaml: services.client.port: ...`).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

# Names become DNS labels (discovery names), stack-name parts and ECS service names,
# so the strictest of those rules applies: RFC 1123 label, lower case.
DNS_LABEL = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_STACK_NAME = 128
# ARNs the topology may name (https://docs.aws.amazon.com/service-authorization/latest/reference/):
# an ACM certificate, a Secrets Manager secret (the whole secret: the execution role's
# statement names exactly it), an SSM parameter, a KMS key, an AWS Private CA.
_PARTITION_REGION_ACCOUNT = r"arn:aws[a-z-]*:{service}:[a-z]{{2}}(?:-[a-z]+)+-[0-9]:[0-9]{{12}}:"
CERTIFICATE_ARN_PATTERN = (
    "^" + _PARTITION_REGION_ACCOUNT.format(service="acm") + r"certificate/[0-9a-f-]{36}$")
SECRETSMANAGER_ARN_PATTERN = (
    "^" + _PARTITION_REGION_ACCOUNT.format(service="secretsmanager")
    + r"secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$")
SSM_PARAMETER_ARN_PATTERN = (
    "^" + _PARTITION_REGION_ACCOUNT.format(service="ssm") + r"parameter/[A-Za-z0-9/_.-]+$")
KMS_KEY_ARN_PATTERN = (
    "^" + _PARTITION_REGION_ACCOUNT.format(service="kms") + r"key/[A-Za-z0-9-]+$")
PRIVATE_CA_ARN_PATTERN = (
    "^" + _PARTITION_REGION_ACCOUNT.format(service="acm-pca")
    + r"certificate-authority/[0-9a-f-]{36}$")


class TopologyError(ValueError):
    """A topology file that cannot be used; str() is the one-line message for the user."""


class Fields:
    """Reads one document; each section's mixin (services, workloads, quotas, environments)
    adds the checks of its part of the file format."""

    def __init__(self, source: str, check_paths: bool = False):
        self.source = source
        self.check_paths = check_paths

    def fail(self, where: str, message: str) -> TopologyError:
        return TopologyError(f"{self.source}: {where}: {message}")

    def mapping(self, value: Any, where: str, allowed: set[str], required: set[str]) -> Mapping:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {kind(value)}")
        for key in value:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                raise self.fail(join(where, key), f"unknown key (allowed: {hint})")
        for key in sorted(required - set(value)):
            raise self.fail(join(where, key), "required field is missing")
        return value

    def integer(self, value: Any, where: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected an integer, got {kind(value)}")
        if not low <= value <= high:
            raise self.fail(where, f"{value} is outside {low}..{high}")
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {kind(value)}")
        return value

    def label(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not DNS_LABEL.match(value):
            raise self.fail(
                where,
                f"{value!r} is not a valid DNS label (lower-case letters, digits and '-', "
                "starting with a letter, at most 63 characters)",
            )
        return value

    def arn(self, value: Any, where: str, pattern: str, what: str) -> str:
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            shown = value if isinstance(value, str) else kind(value)
            raise self.fail(where, f"{shown!r} is not {what}")
        return value

    def namespace(self, value: Any, where: str = "namespace") -> str:
        labels = value.split(".") if isinstance(value, str) else []
        if not labels or len(value) > 253 or not all(DNS_LABEL.match(part) for part in labels):
            raise self.fail(
                where, f"{value!r} is not a valid DNS name (dot-separated DNS labels)"
            )
        return value


def join(where: str, key: Any) -> str:
    return str(key) if where == "(top level)" else f"{where}.{key}"


def kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)
