from __future__ import annotations

import pytest

from generator import topology as topology_module

# A topology that exercises every optional field: a chain, a cycle, a public
# service, extra environment and scaling bounds.
RICH_TOPOLOGY = """\
app: shop
namespace: internal.shop
log_retention_days: 14
services:
  web:
    port: 3000
    cpu: 512
    memory: 1024
    desired_count: 2
    calls: [orders, catalog]
    public: true
    scaling: {min: 2, max: 6, cpu_target: 60}
    environment: {LOG_LEVEL: debug, FEATURE_X: true}
  orders:
    port: 8080
    calls: [payments]
  payments:
    port: 8443
    discovery_name: pay
    calls: [orders]
    environment: {LOG_LEVEL: info}
  catalog:
    port: 9000
"""


@pytest.fixture
def rich_topology_text() -> str:
    return RICH_TOPOLOGY


@pytest.fixture
def rich_topology(write_topology) -> topology_module.Topology:
    return topology_module.load(write_topology(RICH_TOPOLOGY))
