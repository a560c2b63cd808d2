"""topology.yaml -> immutable Topology, validated once, here, at the edge.

Everything downstream (stacks, params files, plan, pipeline, boto3 commands)
takes a `Topology` and trusts it: nothing else re-checks or reads the YAML.
Every error names the file and the field (`topology.yaml: services.client.port: ...`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from generator import egress as egress_module
from generator import fargate
from generator.names import (
    NO_CALLERS, TASK_SECURITY_GROUP, environment_parameter, secret_parameter,
)

DEFAULT_TOPOLOGY = "topology.yaml"

# Names become DNS labels (discovery names), stack-name parts and ECS service names,
# so the strictest of those rules applies: RFC 1123 label, lower case.
_DNS_LABEL = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEALTH_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_MAX_STACK_NAME = 128

# A container image reference as Docker's distribution/reference grammar defines it:
# [domain[:port]/]path-component(/path-component)*[:tag][@digest]
# (https://github.com/distribution/reference/blob/main/reference.go). The same text is the
# service template's ImageUri AllowedPattern (Java regex: only constructs both share).
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:[.]{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE_PATTERN = (rf"^(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
                           rf"(?::{_TAG})?(?:@{_DIGEST})?$")
_IMAGE_REFERENCE = re.compile(IMAGE_REFERENCE_PATTERN)
MAX_IMAGE_REFERENCE = 1024
# A private ECR repository: the execution role may pull from it (and only from it and the
# pipeline's own repository). https://docs.aws.amazon.com/AmazonECR/latest/userguide/Registries.html
_ECR_IMAGE = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<repository>[^:@]+)")
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
_BUILD_DIRECTORY = re.compile(r"^[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*$")
# A build directory's image tag is "<slug>-<40-hex commit>", at most 128 characters.
MAX_BUILD_SLUG = 80
# The default app's container health check (only its image has service.healthcheck).
DEFAULT_HEALTH_CHECK_COMMAND = ("CMD", "python", "-m", "service.healthcheck")
_HEALTH_CHECK_KINDS = ("CMD", "CMD-SHELL")

# Environment variables the service template sets itself; a topology may not override them.
RESERVED_ENVIRONMENT = frozenset(
    {"SERVICE_NAME", "PORT", "PEER_URLS", "PEER_TIMEOUT_SECONDS", "HEALTH_CHECK_PATH"}
)
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653,
)

_TOP_KEYS = {"app", "namespace", "log_retention_days", "services", "quotas",
             "service_connect_tls", "egress"}
_TLS_KEYS = {"private_ca_arn"}
_QUOTA_KEYS = {"security_group_inbound_rules"}
# Inbound rules per security group: AWS's default, adjustable up to 1,000 in Service
# Quotas (generator.awsfacts.quotas cites the page). A topology whose account has a
# raised quota declares it, and generate checks against that value instead.
DEFAULT_SECURITY_GROUP_INBOUND_RULES = 60
MAX_SECURITY_GROUP_INBOUND_RULES = 1000
_SERVICE_KEYS = {
    "port", "cpu", "memory", "desired_count", "calls", "public", "health_check_path",
    "scaling", "environment", "discovery_name", "build", "image", "health_check_command",
    "certificate_arn", "secrets", "secrets_kms_key_arn", "read_only_root_filesystem",
}
_SCALING_KEYS = {"min", "max", "cpu_target"}


class TopologyError(ValueError):
    """A topology file that cannot be used; str() is the one-line message for the user."""


@dataclass(frozen=True)
class Scaling:
    min: int
    max: int
    cpu_target: int


@dataclass(frozen=True)
class Service:
    name: str
    discovery_name: str
    port: int
    cpu: int
    memory: int
    desired_count: int
    calls: tuple[str, ...]
    public: bool
    health_check_path: str
    scaling: Scaling
    environment: tuple[tuple[str, str], ...] = ()
    # Where the image comes from: neither (the project's Flask app, service/Dockerfile),
    # `build` (a directory with a Dockerfile, relative to topology.yaml, POSIX, normalised)
    # or `image` (a registry reference, not built).
    build: str | None = None
    image: str | None = None
    health_check_command: tuple[str, ...] = ()
    certificate_arn: str = ""
    # Variable name -> Secrets Manager secret or SSM parameter ARN (never a value).
    secrets: tuple[tuple[str, str], ...] = ()
    secrets_kms_key_arn: str = ""
    read_only_root_filesystem: bool = True

    @property
    def runs_default_app(self) -> bool:
        return self.build is None and self.image is None

    @property
    def container_health_check(self) -> tuple[str, ...]:
        """health_check_command, else the default app's own; other images get none."""
        if self.health_check_command:
            return self.health_check_command
        return DEFAULT_HEALTH_CHECK_COMMAND if self.runs_default_app else ()

    @property
    def pull_repository_arn(self) -> str:
        """The private ECR repository of `image`, if it is one (else "")."""
        match = _ECR_IMAGE.match(self.image or "")
        if not match:
            return ""
        region = match["region"]
        partition = ("aws-cn" if region.startswith("cn-")
                     else "aws-us-gov" if region.startswith("us-gov-") else "aws")
        return (f"arn:{partition}:ecr:{region}:{match['account']}:repository/"
                f"{match['repository']}")


@dataclass(frozen=True)
class ServiceConnectTls:
    """Namespace-wide TLS between services, certificates from an AWS Private CA."""

    private_ca_arn: str


@dataclass(frozen=True)
class Quotas:
    """Account quotas the topology declares where they differ from AWS's defaults."""

    security_group_inbound_rules: int = DEFAULT_SECURITY_GROUP_INBOUND_RULES


@dataclass(frozen=True)
class Topology:
    app: str
    namespace: str
    log_retention_days: int
    services: tuple[Service, ...]
    source: str = field(default=DEFAULT_TOPOLOGY, compare=False)
    quotas: Quotas = field(default_factory=Quotas)
    service_connect_tls: ServiceConnectTls | None = None
    egress: egress_module.Egress = field(default_factory=egress_module.Egress)

    @property
    def cluster_stack_name(self) -> str:
        return f"{self.app}-cluster"

    @property
    def bootstrap_stack_name(self) -> str:
        return f"{self.app}-bootstrap"

    @property
    def pipeline_stack_name(self) -> str:
        return f"{self.app}-pipeline"

    def stack_name(self, service: Service) -> str:
        return f"{self.app}-{service.name}"

    def network_stack_name(self, service: Service) -> str:
        return network_stack_name(self.app, service.name)

    def ingress_stack_name(self, service: Service) -> str:
        return ingress_stack_name(self.app, service.name)

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def endpoint(self, service: Service) -> str:
        """The URL a caller uses: Service Connect's client alias for `service`."""
        return f"http://{service.discovery_name}.{self.namespace}:{service.port}"

    def callees(self, service: Service) -> tuple[Service, ...]:
        return tuple(self.service(name) for name in service.calls)

    def callers(self, service: Service) -> tuple[Service, ...]:
        return tuple(s for s in self.services if service.name in s.calls)

    @property
    def has_public_service(self) -> bool:
        return any(service.public for service in self.services)

    @property
    def environment_names(self) -> tuple[str, ...]:
        """Every extra variable name any service sets, sorted: the service template's env slots."""
        return tuple(sorted({name for s in self.services for name, _ in s.environment}))

    @property
    def secret_names(self) -> tuple[str, ...]:
        """Every secret variable name any service has, sorted: the template's secret slots."""
        return tuple(sorted({name for s in self.services for name, _ in s.secrets}))

    @property
    def build_directories(self) -> tuple[str, ...]:
        """The distinct `build` directories, in topology order: what the pipeline builds."""
        return tuple(dict.fromkeys(s.build for s in self.services if s.build))

    @property
    def runs_default_app(self) -> bool:
        return any(service.runs_default_app for service in self.services)

    @property
    def root(self) -> Path:
        """The directory `build` paths are relative to: topology.yaml's own."""
        return Path(self.source).parent


def build_slug(directory: str) -> str:
    """A build directory as part of an image tag: apps/orders -> apps-orders."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", directory)


def secret_name(arn: str) -> str:
    """The name in a secret or parameter ARN: secret:<name>-AbCdEf, parameter/<name> (a
    hierarchical parameter /a/b has the ARN parameter/a/b)."""
    if ":secretsmanager:" in arn:
        return arn.split(":secret:", 1)[1]
    return arn.split(":parameter/", 1)[1]


def network_stack_name(app: str, service: str) -> str:
    return f"{app}-{service}-network"


def ingress_stack_name(app: str, service: str) -> str:
    return f"{app}-{service}-ingress"


def network_export_name(app: str, service: str) -> str:
    """The export of a service's task security group, which its callees import."""
    return f"{network_stack_name(app, service)}-{TASK_SECURITY_GROUP}"


def logical_id_part(name: str) -> str:
    """What Fn::ForEach's `&{}` keeps of a name in a logical id: letters and digits."""
    return re.sub(r"[^A-Za-z0-9]", "", name)


# --- loading -------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a topology must not lose a service that way."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)

# libyaml's parser with the same constructors: a 300-service topology (87 KB) parses in
# 0.05 s instead of 0.28 s (measured for issue 9). Its error messages are worded
# differently, so a file it refuses is parsed again by the pure-Python loader, whose
# message is the one the user sees (test_topology checks both loaders agree on the data).
if getattr(yaml, "__with_libyaml__", False):
    class _FastUniqueKeyLoader(yaml.CSafeLoader):
        pass

    _FastUniqueKeyLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)
else:  # pragma: no cover - PyYAML built without libyaml
    _FastUniqueKeyLoader = _UniqueKeyLoader


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


def parse(text: str, source: str = DEFAULT_TOPOLOGY, check_paths: bool = False) -> Topology:
    """`check_paths`: each `build` directory must exist, with a Dockerfile, relative to
    the directory of `source` (load() checks; text parsed on its own is not on disk)."""
    return _Validator(source, check_paths).topology(_read_yaml(text, source))


def _read_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_FastUniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError:
        pass
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as err:
        raise TopologyError(_yaml_error_message(source, err)) from None


def _yaml_error_message(source: str, err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
    problem = getattr(err, "problem", None) or str(err)
    return f"{where}: invalid YAML: {' '.join(str(problem).split())}"


class _Validator:
    """Turns the parsed document into a Topology; each check names the field it is about."""

    def __init__(self, source: str, check_paths: bool = False):
        self.source = source
        self.check_paths = check_paths

    def fail(self, where: str, message: str) -> TopologyError:
        return TopologyError(f"{self.source}: {where}: {message}")

    def mapping(self, value: Any, where: str, allowed: set[str], required: set[str]) -> Mapping:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {_kind(value)}")
        for key in value:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                raise self.fail(_join(where, key), f"unknown key (allowed: {hint})")
        for key in sorted(required - set(value)):
            raise self.fail(_join(where, key), "required field is missing")
        return value

    def integer(self, value: Any, where: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected an integer, got {_kind(value)}")
        if not low <= value <= high:
            raise self.fail(where, f"{value} is outside {low}..{high}")
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {_kind(value)}")
        return value

    def label(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not _DNS_LABEL.match(value):
            raise self.fail(
                where,
                f"{value!r} is not a valid DNS label (lower-case letters, digits and '-', "
                "starting with a letter, at most 63 characters)",
            )
        return value

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
        return Topology(app, namespace, retention, services, self.source, quotas, tls, egress)

    def check_tls_behind_load_balancers(self, services) -> None:
        """With Service Connect TLS a public service's tasks answer TLS 1.3 only, and an ALB
        speaks TLS 1.3 to its targets only behind an HTTPS listener with a TLS 1.3 policy:
        "Otherwise, backend connections use the ELBSecurityPolicy-2016-08 policy"
        (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html),
        which has no TLS 1.3. Service Connect TLS's page asks for that listener
        (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-connect-tls.html,
        "Service Connect and Application Load Balancer health checks"); certificate_arn
        gives it (ELBSecurityPolicy-TLS13-1-2-2021-06)."""
        for service in services:
            if service.public and not service.certificate_arn:
                raise self.fail(
                    f"services.{service.name}.certificate_arn",
                    "a public service needs certificate_arn with service_connect_tls: its "
                    "tasks speak TLS 1.3 only, which the load balancer uses towards them only "
                    "behind an HTTPS listener with a TLS 1.3 policy")

    def arn(self, value: Any, where: str, pattern: str, what: str) -> str:
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            shown = value if isinstance(value, str) else _kind(value)
            raise self.fail(where, f"{shown!r} is not {what}")
        return value

    def service_connect_tls(self, value: Any) -> ServiceConnectTls | None:
        if value is None:
            return None
        raw = self.mapping(value, "service_connect_tls", _TLS_KEYS, {"private_ca_arn"})
        return ServiceConnectTls(self.arn(
            raw["private_ca_arn"], "service_connect_tls.private_ca_arn",
            PRIVATE_CA_ARN_PATTERN,
            "an AWS Private CA ARN (arn:aws:acm-pca:<region>:<account>:certificate-authority/<id>)"))

    def build_directory(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, "expected a directory path relative to the topology file")
        posix = value.strip().replace("\\", "/").rstrip("/")
        parts = [part for part in posix.split("/") if part not in ("", ".")]
        normal = "/".join(parts)
        if posix.startswith("/") or ".." in parts or not normal:
            raise self.fail(where, f"{value!r} must be a directory inside the topology file's "
                                   "directory (relative, no '..')")
        if not _BUILD_DIRECTORY.match(normal):
            raise self.fail(where, f"{value!r}: use letters, digits, '.', '_', '-' and '/'")
        if len(build_slug(normal)) > MAX_BUILD_SLUG:
            raise self.fail(where, f"{value!r} is longer than {MAX_BUILD_SLUG} characters (it "
                                   "becomes part of the image tag)")
        if self.check_paths:
            directory = Path(self.source).parent / normal
            if not directory.is_dir():
                raise self.fail(where, f"{normal}: no such directory (relative to "
                                       f"{Path(self.source).parent or '.'})")
            if not (directory / "Dockerfile").is_file():
                raise self.fail(where, f"{normal}: has no Dockerfile")
        return normal

    def image(self, value: Any, where: str) -> str:
        if (not isinstance(value, str) or len(value) > MAX_IMAGE_REFERENCE
                or not _IMAGE_REFERENCE.match(value)):
            shown = value if isinstance(value, str) else _kind(value)
            raise self.fail(where, f"{shown!r} is not an image reference "
                                   "([registry/]repository[:tag][@digest])")
        return value

    def health_check_command(self, value: Any, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if (not isinstance(value, list) or len(value) < 2
                or not all(isinstance(item, str) and item for item in value)):
            raise self.fail(where, 'expected a list like [CMD-SHELL, "curl -f http://localhost/ '
                                   '|| exit 1"] or [CMD, executable, arg, ...]')
        if value[0] not in _HEALTH_CHECK_KINDS:
            raise self.fail(where, f"the first item must be CMD or CMD-SHELL, not {value[0]!r}")
        for index, item in enumerate(value):
            if "," in item:
                raise self.fail(f"{where}[{index}]", "commas are not supported: the command "
                                "reaches the template as a comma-delimited list")
            if item != item.strip():
                # CloudFormation trims each item of a CommaDelimitedList.
                raise self.fail(f"{where}[{index}]", "leading or trailing spaces would be "
                                "trimmed (a comma-delimited list parameter); remove them")
        return tuple(value)

    def secrets(self, value: Any, where: str, app: str) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping of NAME: secret or parameter ARN, got "
                                   f"{_kind(value)}")
        pairs = []
        for name, arn in value.items():
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise self.fail(_join(where, name), "not a valid environment variable name")
            if name in RESERVED_ENVIRONMENT:
                raise self.fail(_join(where, name), "is set by the service template itself")
            if not isinstance(arn, str) or not (re.fullmatch(SECRETSMANAGER_ARN_PATTERN, arn)
                                                or re.fullmatch(SSM_PARAMETER_ARN_PATTERN, arn)):
                # The value itself may be a secret pasted by mistake: never echo it.
                raise self.fail(_join(where, name), "expected a Secrets Manager secret ARN "
                                "(arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 "
                                "characters>) or an SSM parameter ARN (arn:aws:ssm:<region>:"
                                "<account>:parameter/<name>); the value is not shown")
            if not secret_name(arn).startswith(f"{app}/"):
                # The boundary lets the app's roles read these names only (issue 15):
                # another team's secret must not reach this app's containers.
                kind = "secret" if ":secretsmanager:" in arn else "parameter"
                raise self.fail(_join(where, name), f"the {kind}'s name must start with "
                                f"'{app}/' (the app's own; a parameter may be '/{app}/...'), "
                                "so the app's roles may read it and no other team's")
            pairs.append((name, arn))
        return tuple(sorted(pairs))

    def quotas(self, value: Any) -> Quotas:
        raw = self.mapping(value if value is not None else {}, "quotas", _QUOTA_KEYS, set())
        rules = self.integer(
            raw.get("security_group_inbound_rules", DEFAULT_SECURITY_GROUP_INBOUND_RULES),
            "quotas.security_group_inbound_rules", 1, MAX_SECURITY_GROUP_INBOUND_RULES)
        return Quotas(security_group_inbound_rules=rules)

    def check_names(self, app: str, services: tuple[Service, ...]) -> None:
        """Stack names, export names and logical ids made from service names never collide."""
        owners = {f"{app}-{suffix}": f"the {suffix} stack"
                  for suffix in ("cluster", "pipeline", "bootstrap")}
        parts: dict[str, str] = {}
        for service in services:
            where = f"services.{service.name}"
            if service.name == NO_CALLERS:
                raise self.fail(where, f"'{NO_CALLERS}' is reserved: a service stack's Callers "
                                       "parameter uses it to say that no service calls it")
            for stack in (f"{app}-{service.name}", network_stack_name(app, service.name),
                          ingress_stack_name(app, service.name)):
                other = owners.setdefault(stack, f"service '{service.name}'")
                if other != f"service '{service.name}'":
                    raise self.fail(where, f"its stack name '{stack}' is also that of {other}; "
                                           "rename the service")
            # A caller's name becomes part of the logical id of its ingress rule in each
            # callee's ingress stack (Fn::ForEach's &{} form keeps only letters and digits).
            part = logical_id_part(service.name)
            other_name = parts.setdefault(part, service.name)
            if other_name != service.name:
                raise self.fail(where, f"'{service.name}' and '{other_name}' differ only in '-', "
                                       "so their CloudFormation logical ids would collide; "
                                       "rename one")

    def namespace(self, value: Any) -> str:
        labels = value.split(".") if isinstance(value, str) else []
        if not labels or len(value) > 253 or not all(_DNS_LABEL.match(part) for part in labels):
            raise self.fail(
                "namespace", f"{value!r} is not a valid DNS name (dot-separated DNS labels)"
            )
        return value

    def service(self, app: str, name: Any, settings: Any) -> Service:
        where = f"services.{name}"
        self.label(name, where)
        # The longest of the service's three stack names (-network and -ingress are as long).
        longest = network_stack_name(app, name)
        if len(longest) > _MAX_STACK_NAME:
            raise self.fail(where, f"stack name '{longest}' is longer than {_MAX_STACK_NAME}")
        if settings is None:
            settings = {}
        raw = self.mapping(settings, where, _SERVICE_KEYS, {"port"})
        port = self.integer(raw["port"], f"{where}.port", 1, 65535)
        cpu = raw.get("cpu", 256)
        if cpu not in fargate.CPU_VALUES or isinstance(cpu, bool):
            raise self.fail(
                f"{where}.cpu",
                f"{cpu!r} is not a Fargate cpu ({', '.join(map(str, fargate.CPU_VALUES))})",
            )
        memory = self.integer(raw.get("memory", 512), f"{where}.memory", 512, 122880)
        if not fargate.is_valid_size(cpu, memory):
            raise self.fail(
                f"{where}.memory",
                f"{memory} MiB is not valid with cpu {cpu} on Fargate "
                f"(valid: {fargate.describe_valid_memory(cpu)})",
            )
        desired = self.integer(raw.get("desired_count", 1), f"{where}.desired_count", 0, 1000)
        calls = raw.get("calls", [])
        if not isinstance(calls, list) or not all(isinstance(c, str) for c in calls):
            raise self.fail(f"{where}.calls", "expected a list of service names")
        for index, callee in enumerate(calls):
            if calls.index(callee) != index:
                raise self.fail(f"{where}.calls[{index}]", f"'{callee}' is listed twice")
        path = raw.get("health_check_path", "/healthz")
        if not isinstance(path, str) or not _HEALTH_PATH.match(path) or len(path) > 1024:
            raise self.fail(
                f"{where}.health_check_path", f"{path!r} is not an absolute URL path like /healthz"
            )
        build = (self.build_directory(raw["build"], f"{where}.build")
                 if raw.get("build") is not None else None)
        image = self.image(raw["image"], f"{where}.image") if raw.get("image") is not None else None
        if build is not None and image is not None:
            raise self.fail(f"{where}.image", "give either build (a directory the pipeline "
                                              "builds) or image (a reference), not both")
        public = self.boolean(raw.get("public", False), f"{where}.public")
        certificate = ""
        if raw.get("certificate_arn") is not None:
            certificate = self.arn(raw["certificate_arn"], f"{where}.certificate_arn",
                                   CERTIFICATE_ARN_PATTERN,
                                   "an ACM certificate ARN (arn:aws:acm:<region>:<account>:"
                                   "certificate/<id>)")
            if not public:
                raise self.fail(f"{where}.certificate_arn", "only a public service has a load "
                                                            "balancer to serve HTTPS; set "
                                                            "public: true or remove it")
        environment = self.environment(raw.get("environment", {}), f"{where}.environment")
        secrets = self.secrets(raw.get("secrets", {}), f"{where}.secrets", app)
        variables = dict(environment)
        for variable, _ in secrets:
            if variable in variables:
                raise self.fail(f"{where}.secrets.{variable}", "is also in environment; a "
                                                               "variable is one or the other")
        kms_key = ""
        if raw.get("secrets_kms_key_arn") is not None:
            kms_key = self.arn(raw["secrets_kms_key_arn"], f"{where}.secrets_kms_key_arn",
                               KMS_KEY_ARN_PATTERN,
                               "a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)")
            if not secrets:
                raise self.fail(f"{where}.secrets_kms_key_arn", "the key decrypts secrets, and "
                                                                "the service has none")
        return Service(
            name=name,
            discovery_name=self.label(
                raw.get("discovery_name", name), f"{where}.discovery_name"
            ),
            port=port,
            cpu=cpu,
            memory=memory,
            desired_count=desired,
            calls=tuple(calls),
            public=public,
            health_check_path=path,
            scaling=self.scaling(raw.get("scaling", {}), f"{where}.scaling", desired),
            environment=environment,
            build=build,
            image=image,
            health_check_command=self.health_check_command(
                raw.get("health_check_command"), f"{where}.health_check_command"),
            certificate_arn=certificate,
            secrets=secrets,
            secrets_kms_key_arn=kms_key,
            read_only_root_filesystem=self.boolean(
                raw.get("read_only_root_filesystem", True),
                f"{where}.read_only_root_filesystem"),
        )

    def scaling(self, value: Any, where: str, desired: int) -> Scaling:
        raw = self.mapping(value if value is not None else {}, where, _SCALING_KEYS, set())
        low = self.integer(raw.get("min", desired), f"{where}.min", 0, 1000)
        high = self.integer(raw.get("max", max(desired, low)), f"{where}.max", 1, 1000)
        target = self.integer(raw.get("cpu_target", 70), f"{where}.cpu_target", 10, 95)
        if low > high:
            raise self.fail(f"{where}.min", f"min {low} is greater than max {high}")
        if not low <= desired <= high:
            raise self.fail(
                f"{where}", f"desired_count {desired} is outside min..max ({low}..{high})"
            )
        return Scaling(low, high, target)

    def environment(self, value: Any, where: str) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping of NAME: value, got {_kind(value)}")
        pairs = []
        for name, raw_value in value.items():
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise self.fail(_join(where, name), "not a valid environment variable name")
            if name in RESERVED_ENVIRONMENT:
                raise self.fail(_join(where, name), "is set by the service template itself")
            if isinstance(raw_value, (dict, list)) or raw_value is None:
                raise self.fail(_join(where, name), "expected a string, number or boolean")
            text = str(raw_value).lower() if isinstance(raw_value, bool) else str(raw_value)
            pairs.append((name, text))
        return tuple(sorted(pairs))

    def check_relations(self, services: tuple[Service, ...]) -> None:
        names = [service.name for service in services]
        owners: dict[str, str] = {}
        self.check_environment_slots(services)
        for service in services:
            where = f"services.{service.name}"
            other = owners.setdefault(service.discovery_name, service.name)
            if other != service.name:
                raise self.fail(
                    f"{where}.discovery_name",
                    f"'{service.discovery_name}' is already the discovery name of '{other}'; "
                    "each service needs its own",
                )
            for index, callee in enumerate(service.calls):
                if callee not in names:
                    raise self.fail(
                        f"{where}.calls[{index}]",
                        f"unknown service '{callee}' (known: {', '.join(sorted(names))})",
                    )
                if callee == service.name:
                    raise self.fail(f"{where}.calls[{index}]", "a service cannot call itself")


    def check_environment_slots(self, services: tuple[Service, ...]) -> None:
        # The one service template gets a parameter per variable name, named from it.
        slots: dict[str, str] = {}
        for service in services:
            for variable, _ in service.environment:
                other = slots.setdefault(environment_parameter(variable), variable)
                if other != variable:
                    raise self.fail(
                        f"services.{service.name}.environment.{variable}",
                        f"clashes with '{other}' (both become template parameter "
                        f"{environment_parameter(variable)}); rename one",
                    )
        secret_slots: dict[str, str] = {}
        for service in services:
            for variable, _ in service.secrets:
                other = secret_slots.setdefault(secret_parameter(variable), variable)
                if other != variable:
                    raise self.fail(
                        f"services.{service.name}.secrets.{variable}",
                        f"clashes with '{other}' (both become template parameter "
                        f"{secret_parameter(variable)}); rename one",
                    )


def _join(where: str, key: Any) -> str:
    return str(key) if where == "(top level)" else f"{where}.{key}"


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)
