"""topology.yaml's `services` section (and `service_connect_tls`, which constrains them):
each service's settings, and the relations between services (calls, discovery names, the
names their stacks and template parameters get).
"""
from __future__ import annotations

import re
from typing import Any

from generator import fargate
from generator.names import NO_CALLERS, environment_parameter, secret_parameter
from generator.topology.fields import (
    CERTIFICATE_ARN_PATTERN, KMS_KEY_ARN_PATTERN, MAX_STACK_NAME, PRIVATE_CA_ARN_PATTERN,
)
from generator.topology.model import (
    Scaling, Service, ServiceConnectTls, ingress_stack_name, logical_id_part,
    network_stack_name,
)
from generator.topology.alarms import AlarmFields
from generator.topology.model import Alarms
from generator.topology.workloads import WorkloadFields

_HEALTH_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_TLS_KEYS = {"private_ca_arn"}
_SERVICE_KEYS = {
    "port", "cpu", "memory", "desired_count", "calls", "public", "health_check_path",
    "scaling", "environment", "discovery_name", "build", "image", "health_check_command",
    "certificate_arn", "secrets", "secrets_kms_key_arn", "read_only_root_filesystem",
    "alarms",
}
_SCALING_KEYS = {"min", "max", "cpu_target"}




class ServiceFields(WorkloadFields, AlarmFields):
    # topology.yaml's `alarms` (read before the services): each service's start.
    alarm_defaults: Alarms = Alarms()
    def service(self, app: str, name: Any, settings: Any, where: str = "") -> Service:
        """`where`: the field the settings came from (an environment's override names its own)."""
        where = where or f"services.{name}"
        self.label(name, where)
        # The longest of the service's three stack names (-network and -ingress are as long).
        longest = network_stack_name(app, name)
        if len(longest) > MAX_STACK_NAME:
            raise self.fail(where, f"stack name '{longest}' is longer than {MAX_STACK_NAME}")
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
            alarms=self.alarms(raw.get("alarms"), f"{where}.alarms", self.alarm_defaults),
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
        for section, parameter in (("environment", environment_parameter),
                                   ("secrets", secret_parameter)):
            slots: dict[str, str] = {}
            for service in services:
                for variable, _ in getattr(service, section):
                    other = slots.setdefault(parameter(variable), variable)
                    if other != variable:
                        raise self.fail(
                            f"services.{service.name}.{section}.{variable}",
                            f"clashes with '{other}' (both become template parameter "
                            f"{parameter(variable)}); rename one",
                        )

    def check_names(self, app: str, services: tuple[Service, ...], prefix: str = "") -> None:
        """Stack names, export names and logical ids made from service names never collide.
        `prefix`: where the services are (an environment's are under its own field)."""
        owners = {f"{app}-{suffix}": f"the {suffix} stack"
                  for suffix in ("cluster", "pipeline", "bootstrap")}
        parts: dict[str, str] = {}
        for service in services:
            where = f"{prefix}services.{service.name}"
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

    def service_connect_tls(self, value: Any) -> ServiceConnectTls | None:
        if value is None:
            return None
        raw = self.mapping(value, "service_connect_tls", _TLS_KEYS, {"private_ca_arn"})
        return ServiceConnectTls(self.arn(
            raw["private_ca_arn"], "service_connect_tls.private_ca_arn",
            PRIVATE_CA_ARN_PATTERN,
            "an AWS Private CA ARN (arn:aws:acm-pca:<region>:<account>:certificate-authority/<id>)"))
