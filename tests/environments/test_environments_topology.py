"""topology.yaml's `environments`: validated once into per-environment topologies."""
from __future__ import annotations

import pytest

from generator import topology
from generator.topology import TopologyError
from tests.environments.conftest import PRODUCTION_ACCOUNT, TWO_ENVIRONMENTS


def test_environments_keep_promotion_order_and_their_own_names(two_environments):
    assert [e.name for e in two_environments.environments] == ["staging", "production"]
    production = two_environments.in_environment("production")
    assert production.app == "shop-production"
    assert production.cluster_stack_name == "shop-production-cluster"
    assert production.stack_name(production.service("web")) == "shop-production-web"
    # Shared by every environment: one pipeline, one bootstrap stack per account.
    assert production.pipeline_stack_name == "shop-pipeline"
    assert production.bootstrap_stack_name == "shop-bootstrap"
    assert production.environment.account == PRODUCTION_ACCOUNT
    assert production.environment.approval is True
    assert production.environments == ()


def test_each_environment_has_its_own_namespace(two_environments):
    staging = two_environments.in_environment("staging")
    production = two_environments.in_environment("production")
    assert staging.namespace == "staging.shop.internal"
    assert production.namespace == "production.shop.internal"
    assert staging.endpoint(staging.service("orders")) == "http://orders.staging.shop.internal:9090"


def test_overrides_apply_to_their_environment_only(two_environments):
    staging = two_environments.in_environment("staging")
    production = two_environments.in_environment("production")
    assert staging.service("web").desired_count == 1
    assert production.service("web").desired_count == 3
    assert production.service("web").scaling.max == 10
    # A mapping override merges key by key: FEATURE_X is kept, LOG_LEVEL replaced.
    assert dict(production.service("web").environment) == {"LOG_LEVEL": "info",
                                                            "FEATURE_X": "on"}
    assert dict(staging.service("web").environment) == {"LOG_LEVEL": "debug", "FEATURE_X": "on"}
    assert (production.service("orders").cpu, production.service("orders").memory) == (1024, 2048)
    # What is promoted is identical.
    for name in ("web", "orders", "stock"):
        before, after = staging.service(name), production.service(name)
        assert (before.port, before.calls, before.discovery_name, before.image, before.build) == \
            (after.port, after.calls, after.discovery_name, after.image, after.build)


def test_without_environments_the_topology_deploys_itself():
    plain = topology.parse("app: demo\nnamespace: my.demo\nservices:\n  a: {port: 80}\n")
    assert plain.environments == ()
    assert plain.deployments == (plain,)
    assert plain.cluster_stack_name == "demo-cluster"
    assert plain.pipeline_stack_name == "demo-pipeline"


def test_deployments_are_the_environments_in_order(two_environments):
    assert [d.app for d in two_environments.deployments] == ["shop-staging", "shop-production"]


def _replace(old: str, new: str) -> str:
    assert old in TWO_ENVIRONMENTS
    return TWO_ENVIRONMENTS.replace(old, new, 1)


@pytest.mark.parametrize("text, message", [
    (_replace('account: "222222222222"', "account: 222222222222"),
     "environments.production.account: quote the account ID"),
    (_replace('account: "222222222222"', 'account: "2222"'),
     "environments.production.account: '2222' is not a 12-digit AWS account ID"),
    (_replace("    approval: true\n", "    approval: true\n    colour: blue\n"),
     "environments.production.colour: unknown key"),
    (_replace("      orders:\n        cpu: 1024", "      payments:\n        cpu: 1024"),
     "environments.production.services.payments: unknown key"),
    (_replace("        desired_count: 3", "        port: 80"),
     "environments.production.services.web.port: cannot differ between environments"),
    (_replace("        memory: 2048", "        memory: 100000"),
     "environments.production.services.orders.memory: 100000 MiB is not valid with cpu 1024"),
    (_replace("region: eu-west-1\n    approval", "region: Europe\n    approval"),
     "environments.production.region: 'Europe' is not an AWS Region code"),
    (_replace("      vpc_id: vpc-1a1b1c1d\n", "      vpc_id: my-vpc\n"),
     "environments.production.network.vpc_id: 'my-vpc' is not a VPC id"),
    (_replace("      public_subnets: [subnet-1c1c1c1c, subnet-1d1d1d1d]\n", ""),
     "environments.production.network.public_subnets: a public service's load balancer"),
    (_replace("      public_subnets: [subnet-1c1c1c1c, subnet-1d1d1d1d]\n",
              "      public_subnets: [subnet-1c1c1c1c]\n"),
     "environments.production.network.public_subnets: expected a list of at least 2"),
    (_replace("    approval: true\n", "    approval: true\n    namespace: staging.shop.internal\n"),
     "environments.production.namespace: 'staging.shop.internal' is also the namespace of "
     "environment 'staging'"),
    (_replace("  staging:\n", "  Staging:\n"),
     "environments.Staging: 'Staging' is not a valid DNS label"),
    (_replace("    test_commands:\n      - curl", "    test_commands:\n      - 3\n      - curl"),
     "environments.staging.test_commands: expected a list"),
])
def test_bad_environments_are_refused_in_one_line(text, message):
    with pytest.raises(TopologyError) as raised:
        topology.parse(text, "topology.yaml")
    assert str(raised.value).startswith(f"topology.yaml: {message}")
    assert "\n" not in str(raised.value)


def test_stack_names_of_two_environments_must_not_collide():
    text = """\
app: a
namespace: n.internal
services:
  b-c: {port: 1}
  c: {port: 2}
environments:
  x:
    account: "111111111111"
    region: eu-west-1
    network: {vpc_id: vpc-0a1b2c3d, private_subnets: [subnet-0a0a0a0a]}
  x-b:
    account: "111111111111"
    region: eu-west-1
    network: {vpc_id: vpc-0a1b2c3d, private_subnets: [subnet-0a0a0a0a]}
"""
    with pytest.raises(TopologyError, match="environments.x-b: stack name 'a-x-b-c' is also "
                                            "one of environment 'x'"):
        topology.parse(text, "topology.yaml")


def test_an_environment_secret_must_be_the_environments_own(two_environments_text):
    """A production task reads production's secrets only: the name carries the
    environment's app (`shop-production/`), which its roles' boundary allows."""
    arn = "arn:aws:secretsmanager:eu-west-1:222222222222:secret:shop/db-AbCdEf"
    text = two_environments_text.replace(
        "  orders:\n    port: 9090\n", f"  orders:\n    port: 9090\n    secrets: {{DB: {arn}}}\n")
    with pytest.raises(TopologyError, match="environments.staging.services.orders.secrets.DB: "
                                            "the secret's name must start with 'shop-staging/'"):
        topology.parse(text, "topology.yaml")
    own = arn.replace("shop/db", "shop-production/db")
    staging_own = arn.replace("shop/db", "shop-staging/db")
    text = text.replace(
        "      orders:\n        cpu: 1024",
        f"      orders:\n        secrets: {{DB: {own}}}\n        cpu: 1024").replace(
        "    test_commands:", f"    services:\n      orders:\n        secrets: {{DB: {staging_own}}}\n"
                             "    test_commands:")
    loaded = topology.parse(text, "topology.yaml")
    assert dict(loaded.in_environment("production").service("orders").secrets)["DB"] == own


def test_unknown_environment_is_a_key_error(two_environments):
    with pytest.raises(KeyError):
        two_environments.in_environment("qa")
