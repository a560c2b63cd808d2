"""Fixtures for the IAM tests: every template generated into tmp_path (the committed
topology and one with a public service), read back as CloudFormation sees it, and the
boto3 call recorder (recording.py). Helpers live in templates_iam.py."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from generator import render, topology as topology_module
from recording import boto3_calls  # noqa: F401  (fixture)
from templates_iam import load_template

PUBLIC_TOPOLOGY = """\
app: shop
namespace: shop.local
services:
  web:
    port: 3000
    public: true
    calls: [orders]
  orders:
    port: 8080
"""


# Issue 10's fields that create or widen roles: Service Connect TLS (the cluster stack's
# infrastructure role), secrets of both kinds with a KMS key (the execution role), a
# private ECR image (its pull scope), HTTPS (the listener).
WORKLOADS_TOPOLOGY = """\
app: shop
namespace: shop.local
service_connect_tls:
  private_ca_arn: arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0f3c1d2e-1111-2222-3333-444455556666
services:
  web:
    port: 3000
    public: true
    certificate_arn: arn:aws:acm:eu-west-1:123456789012:certificate/0f3c1d2e-1111-2222-3333-444455556666
    calls: [orders, ledger]
    secrets:
      DB_PASSWORD: arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/web-db-AbCdEf
      API_KEY: arn:aws:ssm:eu-west-1:123456789012:parameter/shop/web/api-key
    secrets_kms_key_arn: arn:aws:kms:eu-west-1:123456789012:key/0f3c1d2e-1111-2222-3333-444455556666
  orders:
    port: 8080
    build: apps/orders
  ledger:
    port: 9000
    image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/ledger:1.0
"""


def _generate(out: Path, topology: topology_module.Topology) -> dict[str, dict]:
    render.write(out, render.render(topology))
    return {path.name: load_template(path) for path in sorted(out.glob("*.yaml"))}


@pytest.fixture(scope="session")
def public_topology() -> topology_module.Topology:
    return topology_module.parse(textwrap.dedent(PUBLIC_TOPOLOGY), "public-topology.yaml")


@pytest.fixture(scope="session")
def workloads_topology() -> topology_module.Topology:
    return topology_module.parse(WORKLOADS_TOPOLOGY, "workloads-topology.yaml")


@pytest.fixture(scope="session")
def generated(tmp_path_factory, default_topology, public_topology, workloads_topology):
    """{label: (topology, {template file name: template dict})} for the three topologies."""
    return {
        label: (topology, _generate(tmp_path_factory.mktemp(label), topology))
        for label, topology in (("default", default_topology), ("public", public_topology),
                                ("workloads", workloads_topology))
    }


@pytest.fixture(scope="session")
def environments_topology() -> topology_module.Topology:
    """tests/environments' two environments: staging in the pipeline's account
    (111111111111), production in 222222222222."""
    from environments.conftest import TWO_ENVIRONMENTS

    return topology_module.parse(TWO_ENVIRONMENTS, "topology.yaml")


@pytest.fixture(scope="session")
def environments_templates(tmp_path_factory, environments_topology) -> dict[str, dict]:
    return _generate(tmp_path_factory.mktemp("environments"), environments_topology)


@pytest.fixture(scope="session")
def workloads_templates(generated) -> dict[str, dict]:
    return generated["workloads"][1]


@pytest.fixture(scope="session")
def default_templates(generated) -> dict[str, dict]:
    return generated["default"][1]
