"""A two-environment topology: staging in the pipeline's account, production in another."""
from __future__ import annotations

import pytest

PIPELINE_ACCOUNT = "111111111111"
PRODUCTION_ACCOUNT = "222222222222"

TWO_ENVIRONMENTS = f"""\
app: shop
namespace: shop.internal
services:
  web:
    port: 8080
    public: true
    calls: [orders]
    environment: {{LOG_LEVEL: debug, FEATURE_X: "on"}}
  orders:
    port: 9090
    calls: [stock]
  stock:
    port: 7070
environments:
  staging:
    account: "{PIPELINE_ACCOUNT}"
    region: eu-west-1
    network:
      vpc_id: vpc-0a1b2c3d
      private_subnets: [subnet-0a0a0a0a, subnet-0b0b0b0b]
      public_subnets: [subnet-0c0c0c0c, subnet-0d0d0d0d]
    test_commands:
      - curl -fsS "$WEB_URL/healthz"
  production:
    account: "{PRODUCTION_ACCOUNT}"
    region: eu-west-1
    approval: true
    network:
      vpc_id: vpc-1a1b1c1d
      private_subnets: [subnet-1a1a1a1a, subnet-1b1b1b1b]
      public_subnets: [subnet-1c1c1c1c, subnet-1d1d1d1d]
    services:
      web:
        desired_count: 3
        scaling: {{max: 10}}
        environment: {{LOG_LEVEL: info}}
      orders:
        cpu: 1024
        memory: 2048
"""


@pytest.fixture
def two_environments_text() -> str:
    return TWO_ENVIRONMENTS


@pytest.fixture
def two_environments():
    from generator import topology

    return topology.parse(TWO_ENVIRONMENTS, "topology.yaml")
