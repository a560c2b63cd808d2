"""topology.yaml -> immutable Topology, validated once, here, at the edge.

Everything downstream (stacks, params files, plan, pipeline, boto3 commands)
takes a `Topology` and trusts it: nothing else re-checks or reads the YAML.
Every error names the file and the field (`topology.yaml: services.client.port: ...`).

One module per part of the file format: `services` (and the Service Connect TLS that
constrains them), `workloads` (what runs in a container: image, health check,
environment, secrets), `quotas`, `environments`, and `egress` (generator.egress); `model`
holds the objects they produce and `fields` the checks they share.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from generator import egress as egress_module
from generator.topology.environments import EnvironmentFields
from generator.topology.fields import (  # noqa: F401 - the package's interface
    CERTIFICATE_ARN_PATTERN, KMS_KEY_ARN_PATTERN, PRIVATE_CA_ARN_PATTERN,
    SECRETSMANAGER_ARN_PATTERN, SSM_PARAMETER_ARN_PATTERN, TopologyError,
)
from generator.topology.model import (  # noqa: F401 - the package's interface
    DEFAULT_HEALTH_CHECK_COMMAND, DEFAULT_SECURITY_GROUP_INBOUND_RULES, DEFAULT_TOPOLOGY,
    Alarms, Environment, Network, Quotas, Scaling, Service, ServiceConnectTls, Topology, build_slug,
    ecr_repository_arn,
    environment_app, ingress_stack_name, logical_id_part, network_export_name,
    network_stack_name, secret_name,
)
from generator.topology.quotas import MAX_SECURITY_GROUP_INBOUND_RULES  # noqa: F401
from generator.topology.workloads import (  # noqa: F401 - the package's interface
    IMAGE_REFERENCE_PATTERN, MAX_BUILD_SLUG, MAX_IMAGE_REFERENCE, RESERVED_ENVIRONMENT,
)
from generator.topology.yamlread import read_yaml

LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653,
)

_TOP_KEYS = {"app", "namespace", "log_retention_days", "services", "quotas",
             "service_connect_tls", "egress", "environments", "alarms"}


def load(path: str | Path = DEFAULT_TOPOLOGY) -> Topology:
    """Read and validate a topology file. Raises TopologyError with a one-line message."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError(f"{source}: file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise TopologyError(f"{source}: cannot read: {reason}") from None
    return parse(text, source, check_paths=True)


def select(topology: Topology, environment: str | None) -> Topology:
    """The topology a command acts on: `--env NAME`'s, or the file's own when it has no
    environments. One line naming the file when the two do not fit together."""
    names = [e.name for e in topology.environments]
    if environment is None:
        if names:
            raise TopologyError(f"{topology.source}: environments: the file has environments "
                                f"({', '.join(names)}): pass --env NAME")
        return topology
    if not names:
        raise TopologyError(f"{topology.source}: --env {environment}: the file has no "
                            "environments (add an `environments:` section, or drop --env)")
    try:
        return topology.in_environment(environment)
    except KeyError:
        raise TopologyError(f"{topology.source}: environments: no environment "
                            f"{environment!r} (environments: {', '.join(names)})") from None


def parse(text: str, source: str = DEFAULT_TOPOLOGY, check_paths: bool = False) -> Topology:
    """`check_paths`: each `build` directory must exist, with a Dockerfile, relative to
    the directory of `source` (load() checks; text parsed on its own is not on disk)."""
    return _Validator(source, check_paths).topology(read_yaml(text, source))


class _Validator(EnvironmentFields):
    """The whole document: the top-level fields, then each section's own checks."""

    def topology(self, document: Any) -> Topology:
        if document is None:
            raise TopologyError(f"{self.source}: the file is empty")
        top = self.mapping(document, "(top level)", _TOP_KEYS, {"app", "namespace", "services"})
        app = self.label(top["app"], "app")
        namespace = self.namespace(top["namespace"])
        retention = top.get("log_retention_days", 30)
        if retention not in LOG_RETENTION_DAYS or isinstance(retention, bool):
            raise self.fail(
                "log_retention_days",
                f"{retention!r} is not a CloudWatch Logs retention "
                f"({', '.join(map(str, LOG_RETENTION_DAYS))})",
            )
        self.alarm_defaults = self.alarms(top.get("alarms"), "alarms", Alarms())
        raw_services = top["services"]
        if not isinstance(raw_services, dict) or not raw_services:
            raise self.fail("services", "expected a non-empty mapping of service name to settings")
        services = tuple(
            self.service(app, name, settings) for name, settings in raw_services.items()
        )
        self.check_relations(services)
        self.check_names(app, services)
        quotas = self.quotas(top.get("quotas", {}))
        tls = self.service_connect_tls(top.get("service_connect_tls"))
        if tls is not None:
            self.check_tls_behind_load_balancers(services)
        egress = egress_module.parse(top.get("egress"), self.fail)
        environments = self.environments(top.get("environments"), app, namespace,
                                         raw_services, services)
        if tls is not None:
            for environment in environments:
                self.check_tls_behind_load_balancers(environment.services)
        return Topology(app, namespace, retention, services, self.source, quotas, tls, egress,
                        environments, alarms=self.alarm_defaults)
