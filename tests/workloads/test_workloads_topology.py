"""topology.yaml's issue-10 fields: what they become, and every bad form refused with one
line, exit 2 and nothing written."""
from __future__ import annotations

import re

import pytest

from workloads_kit import (
    CA_ARN, CERT_ARN, DB_SECRET, KMS_KEY, LEDGER, LEDGER_REPOSITORY, NGINX, WORKLOADS_TOPOLOGY,
    run_cli, snapshot, write_project,
)
from generator import topology as topology_module
from generator.topology import IMAGE_REFERENCE_PATTERN, TopologyError


def test_every_field_is_read_into_the_service(project):
    topology = topology_module.load(project)
    web, orders, audit, reports = (topology.service(n) for n in ("web", "orders", "audit",
                                                                   "reports"))
    search, ledger = topology.service("search"), topology.service("ledger")
    assert topology.service_connect_tls.private_ca_arn == CA_ARN
    # "apps/orders/" and "./apps/reports" are normalised; the shared directory is one image.
    assert (orders.build, audit.build, reports.build) == ("apps/orders", "apps/orders",
                                                          "apps/reports")
    assert topology.build_directories == ("apps/orders", "apps/reports")
    assert (search.image, ledger.image) == (NGINX, LEDGER)
    assert web.runs_default_app and not orders.runs_default_app and not search.runs_default_app
    assert web.certificate_arn == CERT_ARN and web.secrets_kms_key_arn == KMS_KEY
    assert dict(web.secrets)["DB_PASSWORD"] == DB_SECRET
    assert topology.secret_names == ("API_KEY", "DB_PASSWORD")
    assert search.read_only_root_filesystem is False and web.read_only_root_filesystem is True
    assert ledger.pull_repository_arn == LEDGER_REPOSITORY
    assert search.pull_repository_arn == "" and web.pull_repository_arn == ""


def test_only_the_default_app_gets_a_health_check_without_a_command(project):
    topology = topology_module.load(project)
    assert topology.service("web").container_health_check == (
        "CMD", "python", "-m", "service.healthcheck")
    assert topology.service("search").container_health_check == (
        "CMD-SHELL", "curl -fs http://localhost/ || exit 1")
    assert topology.service("ledger").container_health_check == ()
    assert topology.service("reports").container_health_check == ()


@pytest.mark.parametrize("reference", [
    "nginx:1.27", "nginx", "library/nginx:latest", "repo:tag@sha256:" + "a" * 64,
    "repo@sha256:" + "b" * 64, NGINX, LEDGER, "localhost:5000/team/app:v1.2.3",
    "registry.example.com:443/a/b/c:1", "ghcr.io/owner/image_name__x:1-2_3",
])
def test_valid_references_are_accepted(reference):
    assert re.match(IMAGE_REFERENCE_PATTERN, reference), reference


@pytest.mark.parametrize("reference", [
    "Nginx:1.27", "nginx:", ":1.27", "nginx:-bad", "a//b", "nginx@sha256:short",
    "repo:tag@", "-nginx", "nginx:" + "t" * 129, "https://nginx:1",
])
def test_invalid_references_are_refused(reference):
    assert not re.match(IMAGE_REFERENCE_PATTERN, reference), reference


def _with(service_yaml: str, extra_top: str = "") -> str:
    body = "\n".join("    " + line for line in service_yaml.strip().splitlines())
    return (f"app: shop\nnamespace: shop.local\n{extra_top}services:\n  web:\n{body}\n"
            "  other:\n    port: 9000\n")


SECRET_VALUE = "hunter2-the-actual-password"

BAD = [
    # (id, topology text, field in the message, fragment of the message)
    ("malformed-certificate-arn",
     _with(f"port: 80\npublic: true\ncertificate_arn: {CERT_ARN.replace('acm', 'acn')}"),
     "services.web.certificate_arn", "is not an ACM certificate ARN"),
    ("malformed-secret-arn",
     _with(f"port: 80\nsecrets: {{DB_PASSWORD: '{DB_SECRET[:-7]}'}}"),
     "services.web.secrets.DB_PASSWORD", "expected a Secrets Manager secret ARN"),
    ("secret-value-instead-of-arn",
     _with(f"port: 80\nsecrets: {{DB_PASSWORD: {SECRET_VALUE}}}"),
     "services.web.secrets.DB_PASSWORD", "the value is not shown"),
    ("malformed-ca-arn",
     _with("port: 80", f"service_connect_tls: {{private_ca_arn: {CA_ARN[:-5]}}}\n"),
     "service_connect_tls.private_ca_arn", "is not an AWS Private CA ARN"),
    ("malformed-kms-arn",
     _with(f"port: 80\nsecrets: {{A: {DB_SECRET}}}\nsecrets_kms_key_arn: alias/mine"),
     "services.web.secrets_kms_key_arn", "is not a KMS key ARN"),
    ("build-and-image",
     _with("port: 80\nbuild: apps/orders\nimage: nginx:1.27"),
     "services.web.image", "not both"),
    ("certificate-not-public",
     _with(f"port: 80\ncertificate_arn: {CERT_ARN}"),
     "services.web.certificate_arn", "only a public service"),
    ("secret-collides-with-environment",
     _with(f"port: 80\nenvironment: {{DB_PASSWORD: x}}\nsecrets: {{DB_PASSWORD: {DB_SECRET}}}"),
     "services.web.secrets.DB_PASSWORD", "is also in environment"),
    ("secret-collides-with-reserved",
     _with(f"port: 80\nsecrets: {{PEER_URLS: {DB_SECRET}}}"),
     "services.web.secrets.PEER_URLS", "is set by the service template itself"),
    ("bad-image-reference",
     _with("port: 80\nimage: 'Nginx:1.27'"), "services.web.image", "is not an image reference"),
    ("build-directory-missing",
     _with("port: 80\nbuild: apps/missing"), "services.web.build", "no such directory"),
    ("build-directory-without-dockerfile",
     _with("port: 80\nbuild: apps/empty"), "services.web.build", "has no Dockerfile"),
    ("build-directory-outside",
     _with("port: 80\nbuild: ../elsewhere"), "services.web.build", "no '..'"),
    ("health-check-kind",
     _with("port: 80\nhealth_check_command: [RUN, 'true']"),
     "services.web.health_check_command", "CMD or CMD-SHELL"),
    ("health-check-comma",
     _with("port: 80\nhealth_check_command: [CMD-SHELL, 'a,b']"),
     "services.web.health_check_command[1]", "commas are not supported"),
    ("health-check-spaces",
     _with("port: 80\nhealth_check_command: [CMD, ' python']"),
     "services.web.health_check_command[1]", "would be trimmed"),
    ("kms-key-without-secrets",
     _with(f"port: 80\nsecrets_kms_key_arn: {KMS_KEY}"),
     "services.web.secrets_kms_key_arn", "has none"),
]


@pytest.mark.parametrize("text,field,fragment", [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_a_bad_form_is_one_line_exit_2_and_nothing_is_written(tmp_path, text, field, fragment):
    # The output of a good run is there first: a refused run must leave it as it is.
    topology = write_project(tmp_path, WORKLOADS_TOPOLOGY)
    (tmp_path / "apps" / "empty").mkdir()
    out = tmp_path / "templates"
    assert run_cli("generate", "--topology", topology, "--out", out).returncode == 0
    before = snapshot(tmp_path)

    topology.write_text(text, encoding="utf-8")
    result = run_cli("generate", "--topology", topology, "--out", out)

    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"error: {topology}: {field}: "), lines[0]
    assert fragment in lines[0]
    assert SECRET_VALUE not in result.stderr + result.stdout
    after = snapshot(tmp_path)
    after.pop("topology.yaml"), before.pop("topology.yaml")
    assert after == before


def test_two_secret_names_that_become_one_parameter_are_refused():
    text = _with(f"port: 80\nsecrets: {{DB_PASSWORD: {DB_SECRET}, Db_Password: {DB_SECRET}}}")
    with pytest.raises(TopologyError, match=r"secrets\.(Db_Password|DB_PASSWORD): clashes with"):
        topology_module.parse(text, "t.yaml")


def test_parse_alone_does_not_look_for_build_directories():
    # Text parsed on its own (tests, the scale generator) has no directory to look in.
    topology = topology_module.parse(_with("port: 80\nbuild: apps/nowhere"), "t.yaml")
    assert topology.service("web").build == "apps/nowhere"
