"""Fixtures of the workloads tests (issue 10); the helpers live in workloads_kit.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from generator import names
from workloads_kit import (
    ACCOUNT, WITHOUT_TLS_TOPOLOGY, Evaluator, load_yaml, params, run_cli, write_project,
)


@pytest.fixture
def project(tmp_path) -> Path:
    """A project directory: topology.yaml (WORKLOADS_TOPOLOGY) and its build directories."""
    return write_project(tmp_path / "project")


@pytest.fixture
def project_without_tls(tmp_path) -> Path:
    """WITHOUT_TLS_TOPOLOGY's project: admin public without a certificate (HTTP only)."""
    return write_project(tmp_path / "project-without-tls", WITHOUT_TLS_TOPOLOGY)


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> Path:
    """WORKLOADS_TOPOLOGY generated once (templates/ and samconfig.toml), without lint."""
    root = tmp_path_factory.mktemp("workloads")
    topology = write_project(root)
    result = run_cli("generate", "--topology", topology, "--out", root / "templates")
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture(scope="session")
def service_stack(generated):
    """service -> the resolved resources of its stack (its params file's values)."""
    template = load_yaml(generated / "templates" / "service.yaml")

    def resolve(service: str, **overrides: str) -> dict[str, dict]:
        values = {**params(generated, service), names.TLS_ROLE_PARAMETER:
                  f"arn:aws:iam::{ACCOUNT}:role/shop-cluster-ServiceConnectTlsRole-X",
                  **overrides}
        return Evaluator(template, values).resources()

    return resolve
