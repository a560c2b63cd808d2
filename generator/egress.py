"""What every task may reach besides its callees: topology.yaml's `egress` section,
validated here for generator.topology, and the security-group rules it becomes.

A security group created without outbound rules in its template gets one that "allows all
outbound traffic"; a template that lists outbound rules replaces it, and "If your security
group has no outbound rules, no outbound traffic is allowed"
(https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html). So each task
security group (network.yaml) lists exactly:

- TCP 443 to `https` (default 0.0.0.0/0): what the platform needs is HTTPS to AWS APIs:
  image pulls (ECR's API, its registry and the S3 bucket of its layers), CloudWatch Logs,
  Secrets Manager and SSM parameters, ECS Exec's ssmmessages, and the ECS endpoints the
  Service Connect agent uses, reached through a NAT gateway (0.0.0.0/0) or, in a VPC with
  interface endpoints, at the VPC's own addresses (give its CIDR);
- TCP 443 to each of `https_prefix_lists` (the S3 gateway endpoint's prefix list: image
  layers without a NAT gateway);
- each `allow` entry (TCP, a CIDR, a port or a range), for what a team's own code calls;
- and, in the ingress stacks, TCP to each callee's task security group on its port.

DNS needs no rule: "Security groups cannot block DNS requests to or from the Route 53
Resolver" (the same page, Limitation).
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable

HTTPS_PORT = 443
DEFAULT_HTTPS_CIDR = "0.0.0.0/0"
_KEYS = {"https", "https_prefix_lists", "allow"}
_ALLOW_KEYS = {"cidr", "port"}
_PREFIX_LIST = re.compile(r"^pl-[0-9a-f]{8,17}$")
_PORT_RANGE = re.compile(r"^([0-9]{1,5})-([0-9]{1,5})$")


@dataclass(frozen=True)
class Destination:
    cidr: str
    from_port: int
    to_port: int

    @property
    def ports(self) -> str:
        return str(self.from_port) if self.from_port == self.to_port \
            else f"{self.from_port}-{self.to_port}"


@dataclass(frozen=True)
class Egress:
    https: str = DEFAULT_HTTPS_CIDR
    https_prefix_lists: tuple[str, ...] = ()
    allow: tuple[Destination, ...] = ()

    @property
    def platform_rules(self) -> int:
        """Outbound rules on every task security group besides those to callees."""
        return 1 + len(self.https_prefix_lists) + len(self.allow)


Fail = Callable[[str, str], Exception]


def parse(value: Any, fail: Fail) -> Egress:
    """topology.yaml's `egress` (None: the defaults); `fail(where, message)` makes the
    one-line error generator.topology raises."""
    if value is None:
        return Egress()
    if not isinstance(value, dict):
        raise fail("egress", f"expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(value) - _KEYS)
    if unknown:
        raise fail(f"egress.{unknown[0]}", f"unknown key (known: {', '.join(sorted(_KEYS))})")
    https = _cidr(value.get("https", DEFAULT_HTTPS_CIDR), "egress.https", fail)
    lists = value.get("https_prefix_lists", [])
    if not isinstance(lists, list):
        raise fail("egress.https_prefix_lists", "expected a list of prefix list ids (pl-...)")
    for index, item in enumerate(lists):
        if not isinstance(item, str) or not _PREFIX_LIST.match(item):
            raise fail(f"egress.https_prefix_lists[{index}]",
                       f"{item!r} is not a prefix list id (pl- and 8 to 17 hex digits)")
    allow = value.get("allow", [])
    if not isinstance(allow, list):
        raise fail("egress.allow", "expected a list of {cidr, port} entries")
    destinations = tuple(_destination(item, f"egress.allow[{index}]", fail)
                         for index, item in enumerate(allow))
    return Egress(https, tuple(dict.fromkeys(lists)), tuple(dict.fromkeys(destinations)))


def _cidr(value: Any, where: str, fail: Fail) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True) if isinstance(value, str) else None
    except ValueError as err:
        raise fail(where, f"{value!r} is not an IPv4 CIDR block ({err})") from None
    if network is None:
        raise fail(where, f"expected an IPv4 CIDR block such as 10.0.0.0/16, got {value!r}")
    return str(network)


def _destination(item: Any, where: str, fail: Fail) -> Destination:
    if not isinstance(item, dict):
        raise fail(where, "expected {cidr: ..., port: ...}")
    unknown = sorted(set(item) - _ALLOW_KEYS)
    if unknown or set(item) != _ALLOW_KEYS:
        raise fail(where, "expected exactly the keys cidr and port"
                   + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    cidr = _cidr(item["cidr"], f"{where}.cidr", fail)
    port = item["port"]
    if isinstance(port, int) and not isinstance(port, bool):
        low = high = port
    elif isinstance(port, str) and _PORT_RANGE.match(port):
        low, high = (int(part) for part in _PORT_RANGE.match(port).groups())
    else:
        raise fail(f"{where}.port", f"{port!r} is not a port (1-65535) or a range such as "
                                    "8000-8999")
    if not 1 <= low <= high <= 65535:
        raise fail(f"{where}.port", f"{port!r} is not a port (1-65535) or a range low-high")
    return Destination(cidr, low, high)
