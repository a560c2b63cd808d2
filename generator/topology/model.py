"""The immutable objects a validated topology.yaml becomes; everything downstream reads these.

A topology with `environments:` is one Topology whose `environments` each carry their own
validated services; `Topology.in_environment(name)` is the Topology that environment
deploys (its own stack names, namespace and values), which every command then uses as if
it were a single-environment file.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from generator import egress as egress_module
from generator.names import TASK_SECURITY_GROUP

DEFAULT_TOPOLOGY = "topology.yaml"
# A private ECR repository: the execution role may pull from it (and only from it and the
# pipeline's own repository). https://docs.aws.amazon.com/AmazonECR/latest/userguide/Registries.html
_ECR_IMAGE = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<repository>[^:@]+)")
# The default app's container health check (only its image has service.healthcheck).
DEFAULT_HEALTH_CHECK_COMMAND = ("CMD", "python", "-m", "service.healthcheck")
# Inbound rules per security group: AWS's default, adjustable up to 1,000 in Service
# Quotas (generator.awsfacts.quotas cites the page). A topology whose account has a
# raised quota declares it, and generate checks against that value instead.
DEFAULT_SECURITY_GROUP_INBOUND_RULES = 60


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
    alarms: Alarms = field(default_factory=lambda: Alarms())

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
        return ecr_repository_arn(self.image or "")


@dataclass(frozen=True)
class ServiceConnectTls:
    """Namespace-wide TLS between services, certificates from an AWS Private CA."""

    private_ca_arn: str


@dataclass(frozen=True)
class Quotas:
    """Account quotas the topology declares where they differ from AWS's defaults."""

    security_group_inbound_rules: int = DEFAULT_SECURITY_GROUP_INBOUND_RULES


@dataclass(frozen=True)
class Alarms:
    """When a service's alarms fire (generator.topology.alarms documents each field)."""

    error_rate_percent: float = 5.0
    minimum_requests: int = 20
    latency_ms: int = 1000
    latency_percentile: str = "p99"
    evaluation_minutes: int = 3
    rollback: bool = True
    bake_minutes: int = 5


@dataclass(frozen=True)
class Network:
    """Where an environment's tasks run: passed to its cluster stack by the deployer."""

    vpc_id: str
    private_subnets: tuple[str, ...]
    public_subnets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Environment:
    """One stage of the promotion (topology.yaml's `environments`, in order)."""

    name: str
    account: str
    region: str
    network: Network
    namespace: str
    # The services with this environment's overrides applied, validated like any others.
    services: tuple[Service, ...]
    approval: bool = False
    test_commands: tuple[str, ...] = ()
    quotas: Quotas = field(default_factory=Quotas)


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
    # topology.yaml's `environments`, in promotion order; () deploys the file as it is.
    environments: tuple[Environment, ...] = ()
    # Set only on the Topology of one environment (in_environment): which one it is.
    environment: Environment | None = None
    # topology.yaml's `app`: what the bootstrap stack, the pipeline and the image
    # repository are named after, shared by every environment ("" = `app`).
    project: str = ""
    # topology.yaml's `alarms`: the defaults each service's own alarms start from.
    alarms: Alarms = field(default_factory=lambda: Alarms())
    # An environment's topology keeps every environment's services: the one template set
    # has a parameter slot for each variable any of them sets.
    every_service: tuple[Service, ...] = field(default=(), compare=False, repr=False)

    @property
    def project_app(self) -> str:
        return self.project or self.app

    def in_environment(self, name: str) -> Topology:
        """The topology environment `name` deploys: stacks `<app>-<env>-...`, its own
        namespace, its services' overrides. KeyError when there is no such environment."""
        environment = next((e for e in self.environments if e.name == name), None)
        if environment is None:
            raise KeyError(name)
        return dataclasses.replace(
            self, app=environment_app(self.app, name), namespace=environment.namespace,
            services=environment.services, quotas=environment.quotas, environments=(),
            environment=environment, project=self.app, every_service=self.template_services)

    @property
    def template_services(self) -> tuple[Service, ...]:
        """Every service definition the shared templates serve, in every environment."""
        if self.every_service:
            return self.every_service
        return self.services + tuple(s for e in self.environments for s in e.services)

    @property
    def deployments(self) -> tuple[Topology, ...]:
        """What gets deployed: each environment's topology, or this one without any."""
        if not self.environments:
            return (self,)
        return tuple(self.in_environment(e.name) for e in self.environments)

    @property
    def cluster_stack_name(self) -> str:
        return f"{self.app}-cluster"

    @property
    def bootstrap_stack_name(self) -> str:
        return f"{self.project_app}-bootstrap"

    @property
    def pipeline_stack_name(self) -> str:
        return f"{self.project_app}-pipeline"

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
        return tuple(sorted({name for s in self.template_services for name, _ in s.environment}))

    @property
    def secret_names(self) -> tuple[str, ...]:
        """Every secret variable name any service has, sorted: the template's secret slots."""
        return tuple(sorted({name for s in self.template_services for name, _ in s.secrets}))

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


def ecr_repository_arn(image: str) -> str:
    """The private ECR repository an image reference is in, if it is one (else "")."""
    match = _ECR_IMAGE.match(image)
    if not match:
        return ""
    region = match["region"]
    partition = ("aws-cn" if region.startswith("cn-")
                 else "aws-us-gov" if region.startswith("us-gov-") else "aws")
    return f"arn:{partition}:ecr:{region}:{match['account']}:repository/{match['repository']}"


def environment_app(app: str, environment: str) -> str:
    """The prefix of an environment's stack names, tags and log groups."""
    return f"{app}-{environment}"


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

