"""topology.yaml's `environments` section: the stages a build is promoted through, in order.

    environments:
      staging:
        account: "111111111111"
        region: eu-west-1
        network: {vpc_id: vpc-0a1b2c3d, private_subnets: [subnet-0a1b2c3d, subnet-1a2b3c4d]}
        test_commands: ["curl -fsS $PUBLIC_URL/healthz"]
      production:
        account: "222222222222"
        region: eu-west-1
        approval: true
        network: {...}
        services:
          server: {desired_count: 4, scaling: {max: 12}, cpu: 1024, memory: 2048}

Each environment deploys the same templates with its own parameters: stacks named
`<app>-<env>-...`, its own Cloud Map namespace (`<env>.<namespace>` unless it names one) so
no proxy in one environment can resolve another's endpoints, and its services' overrides.
What is promoted (the image, the call graph, the ports and discovery names) cannot be
overridden: production runs what staging verified.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from generator.topology.fields import join, kind
from generator.topology.model import (
    Environment, Network, Service, environment_app, ingress_stack_name, network_stack_name,
)
from generator.topology.quotas import QuotaFields
from generator.topology.services import ServiceFields

_KEYS = {"account", "region", "network", "namespace", "approval", "test_commands",
         "services", "quotas"}
_NETWORK_KEYS = {"vpc_id", "private_subnets", "public_subnets"}
# What a team varies between staging and production. The rest of a service (image or
# build, port, calls, discovery name, health checks) is what staging verified.
OVERRIDABLE = frozenset({"desired_count", "scaling", "cpu", "memory", "public",
                         "certificate_arn", "environment", "secrets", "secrets_kms_key_arn",
                         "alarms"})
# Mappings an override merges into the service's own, key by key.
_MERGED = frozenset({"scaling", "environment", "secrets", "alarms"})
_ACCOUNT = re.compile(r"^[0-9]{12}$")
# https://docs.aws.amazon.com/general/latest/gr/rande.html (Region codes)
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-[0-9]$")
_VPC = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
# An Application Load Balancer needs subnets in at least two Availability Zones
# (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#subnets-load-balancer).
MIN_PUBLIC_SUBNETS = 2
# Each environment is a stage of the pipeline (pipeline/stack.py); the pipeline's quota of
# 50 stages (generator.awsfacts.quotas) is checked at generate time on the rendered
# pipeline, and this bound keeps a topology far inside it.
MAX_ENVIRONMENTS = 10
MAX_TEST_COMMANDS = 20


class EnvironmentFields(ServiceFields, QuotaFields):

    def environments(self, value: Any, app: str, namespace: str,
                     raw_services: Mapping[str, Any],
                     services: tuple[Service, ...]) -> tuple[Environment, ...]:
        if value is None:
            return ()
        if not isinstance(value, dict) or not value:
            raise self.fail("environments", "expected a mapping of environment name to "
                                            "settings, in promotion order")
        if len(value) > MAX_ENVIRONMENTS:
            raise self.fail("environments", f"{len(value)} environments; at most "
                                            f"{MAX_ENVIRONMENTS} (each is a pipeline stage)")
        environments = tuple(
            self.deployment_environment(app, namespace, name, settings, raw_services, services)
            for name, settings in value.items())
        self.check_distinct(app, environments)
        # The one service template has a parameter per variable name across environments.
        self.check_environment_slots(services + tuple(
            service for environment in environments for service in environment.services))
        return environments

    def deployment_environment(self, app: str, namespace: str, name: Any, settings: Any,
                               raw_services: Mapping[str, Any],
                               services: tuple[Service, ...]) -> Environment:
        where = f"environments.{name}"
        self.label(name, where)
        raw = self.mapping(settings, where, _KEYS, {"account", "region", "network"})
        account = raw["account"]
        if isinstance(account, int) and not isinstance(account, bool):
            raise self.fail(f"{where}.account", "quote the account ID (\"012345678901\"): "
                                                "YAML reads an unquoted one as a number")
        if not isinstance(account, str) or not _ACCOUNT.match(account):
            raise self.fail(f"{where}.account", f"{account!r} is not a 12-digit AWS account ID")
        region = raw["region"]
        if not isinstance(region, str) or not _REGION.match(region):
            raise self.fail(f"{where}.region", f"{region!r} is not an AWS Region code "
                                               "(like eu-west-1)")
        own_app = environment_app(app, name)
        overridden = self.overridden_services(own_app, where, raw.get("services"),
                                              raw_services, services)
        self.check_relations(overridden)
        self.check_names(own_app, overridden, prefix=f"{where}.")
        network = self.network(raw["network"], f"{where}.network",
                               any(service.public for service in overridden))
        return Environment(
            name=name, account=account, region=region, network=network,
            namespace=self.namespace(raw.get("namespace", f"{name}.{namespace}"),
                                     f"{where}.namespace"),
            services=overridden,
            approval=self.boolean(raw.get("approval", False), f"{where}.approval"),
            test_commands=self.test_commands(raw.get("test_commands"),
                                             f"{where}.test_commands"),
            quotas=self.quotas(raw.get("quotas", {}), f"{where}.quotas"),
        )

    def overridden_services(self, app: str, where: str, value: Any,
                            raw_services: Mapping[str, Any],
                            services: tuple[Service, ...]) -> tuple[Service, ...]:
        overrides = self.mapping(value if value is not None else {}, f"{where}.services",
                                 set(raw_services), set())
        result = []
        for service in services:
            override = overrides.get(service.name)
            own_where = f"{where}.services.{service.name}"
            base = raw_services[service.name] or {}
            if override is None:
                override = {}
            if not isinstance(override, dict):
                raise self.fail(own_where, f"expected a mapping of overrides, got "
                                           f"{kind(override)}")
            for key in override:
                if key not in OVERRIDABLE:
                    raise self.fail(join(own_where, key), "cannot differ between environments "
                                    "(what is promoted is what staging verified); overridable: "
                                    + ", ".join(sorted(OVERRIDABLE)))
            merged = dict(base)
            for key, item in override.items():
                if key in _MERGED and isinstance(item, dict) and isinstance(base.get(key), dict):
                    merged[key] = {**base[key], **item}
                else:
                    merged[key] = item
            result.append(self.service(app, service.name, merged, where=own_where))
        return tuple(result)

    def network(self, value: Any, where: str, has_public: bool) -> Network:
        raw = self.mapping(value, where, _NETWORK_KEYS, {"vpc_id", "private_subnets"})
        vpc = raw["vpc_id"]
        if not isinstance(vpc, str) or not _VPC.match(vpc):
            raise self.fail(f"{where}.vpc_id", f"{vpc!r} is not a VPC id (vpc-0123abcd)")
        private = self.subnets(raw["private_subnets"], f"{where}.private_subnets", 1)
        public = ()
        if raw.get("public_subnets") is not None:
            public = self.subnets(raw["public_subnets"], f"{where}.public_subnets",
                                  MIN_PUBLIC_SUBNETS)
        elif has_public:
            raise self.fail(f"{where}.public_subnets", "a public service's load balancer needs "
                            f"at least {MIN_PUBLIC_SUBNETS} public subnets (two Availability "
                            "Zones)")
        return Network(vpc, private, public)

    def subnets(self, value: Any, where: str, minimum: int) -> tuple[str, ...]:
        if not isinstance(value, list) or len(value) < minimum:
            raise self.fail(where, f"expected a list of at least {minimum} subnet id(s)")
        for index, subnet in enumerate(value):
            if not isinstance(subnet, str) or not _SUBNET.match(subnet):
                raise self.fail(f"{where}[{index}]", f"{subnet!r} is not a subnet id "
                                                     "(subnet-0123abcd)")
            if value.index(subnet) != index:
                raise self.fail(f"{where}[{index}]", f"'{subnet}' is listed twice")
        return tuple(value)

    def test_commands(self, value: Any, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if (not isinstance(value, list) or len(value) > MAX_TEST_COMMANDS
                or not all(isinstance(item, str) and item.strip() for item in value)):
            raise self.fail(where, f"expected a list of at most {MAX_TEST_COMMANDS} shell "
                                   "commands")
        return tuple(value)

    def check_distinct(self, app: str, environments: tuple[Environment, ...]) -> None:
        """Environments may share an account: their stack names and namespaces must not."""
        stacks: dict[str, str] = {}
        namespaces: dict[str, str] = {}
        for environment in environments:
            where = f"environments.{environment.name}"
            own_app = environment_app(app, environment.name)
            owned = [f"{own_app}-cluster"]
            for service in environment.services:
                owned += [f"{own_app}-{service.name}",
                          network_stack_name(own_app, service.name),
                          ingress_stack_name(own_app, service.name)]
            for stack in owned:
                other = stacks.setdefault(stack, environment.name)
                if other != environment.name:
                    raise self.fail(where, f"stack name '{stack}' is also one of environment "
                                           f"'{other}'; rename one of them")
            other = namespaces.setdefault(environment.namespace, environment.name)
            if other != environment.name:
                raise self.fail(f"{where}.namespace", f"'{environment.namespace}' is also the "
                                f"namespace of environment '{other}'; each environment needs "
                                "its own, so none can call another's services")
