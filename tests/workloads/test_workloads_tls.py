"""Issue 14 finding 4: a public service with Service Connect TLS gets an HTTPS target group
whose health check goes to the Service Connect port.

service-connect-tls.html, "Service Connect and Application Load Balancer health checks"
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-connect-tls.html):
"You can use Service Connect with Application Load Balancer health checks and TLS 1.3
encryption", with "a TLS listener with a TLS 1.3 security policy (such as
ELBSecurityPolicy-TLS13-1-2-2021-06)", an HTTPS target group, and the health check on the
Service Connect port. That port is the container port: "In awsvpc mode and Fargate, the
default value is the container port number"
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceConnectService.html).
On today's main the target group stays HTTP: the proxy, which speaks TLS 1.3 only, never
answers it.
"""
from __future__ import annotations

import pytest

from workloads_kit import CA_ARN, CERT_ARN, load_yaml, params, run_cli, snapshot, write_project
from generator import names, topology as topology_module
from generator.awsfacts import schemas
from generator.topology import TopologyError


def _target_group(service_stack, service: str, **overrides) -> dict:
    return service_stack(service, **overrides)["TargetGroup"]["Properties"]


def test_public_with_service_connect_tls_gets_an_https_target_group(service_stack,
                                                                     generated):
    web = _target_group(service_stack, "web")
    port = params(generated, "web")["ContainerPort"]
    assert web["Protocol"] == "HTTPS"
    assert web["HealthCheckProtocol"] == "HTTPS"
    # On the Service Connect port (the container port), not wherever "traffic-port" points.
    assert str(web["HealthCheckPort"]) == str(port) == "8080"
    assert web["Port"] == port
    # The page's TLS 1.3 listener: the one the certificate gives web.
    listener = service_stack("web")["HttpsListener"]["Properties"]
    assert listener["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"


def test_public_without_service_connect_tls_keeps_http(service_stack):
    web = _target_group(service_stack, "web", **{names.TLS_CA_PARAMETER: "",
                                                 names.TLS_ROLE_PARAMETER: ""})
    assert web["Protocol"] == "HTTP"
    assert web["HealthCheckProtocol"] == "HTTP"
    assert web["HealthCheckPort"] == "traffic-port"


def test_a_private_service_with_tls_has_no_target_group(service_stack):
    assert "TargetGroup" not in service_stack("orders")


def test_turning_tls_on_replaces_an_unnamed_target_group(generated):
    """Protocol is create-only in the AWS::ElasticLoadBalancingV2::TargetGroup schema that
    cfn-lint ships; a replaced resource with a fixed Name would collide with itself, so the
    template must leave the name to CloudFormation."""
    schema = schemas.schema("AWS::ElasticLoadBalancingV2::TargetGroup")
    assert "Protocol" in schema.create_only
    template = load_yaml(generated / "templates" / "service.yaml")
    target_group = template["Resources"]["TargetGroup"]["Properties"]
    assert "Name" not in target_group
    # Every user of the target group follows its ARN, so a replacement re-points them.
    uses = [logical for logical, resource in template["Resources"].items()
            if '"TargetGroup"' in str(resource).replace("'", '"')]
    assert {"Listener", "HttpsListener", "Service"} <= set(uses)


PUBLIC_WITHOUT_CERTIFICATE = f"""\
app: shop
namespace: shop.local
service_connect_tls:
  private_ca_arn: {CA_ARN}
services:
  web:
    port: 8080
    public: true
  orders:
    port: 8080
"""


def test_tls_refuses_a_public_service_without_a_certificate():
    """Without an HTTPS listener with a TLS 1.3 policy the ALB talks to its targets with
    ELBSecurityPolicy-2016-08 ("Otherwise, backend connections use the
    ELBSecurityPolicy-2016-08 policy":
    https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html),
    no TLS 1.3, and the Service Connect proxy speaks nothing older; the page asks for
    "a TLS listener with a TLS 1.3 security policy". Today's main accepts it."""
    with pytest.raises(TopologyError) as refused:
        topology_module.parse(PUBLIC_WITHOUT_CERTIFICATE)
    assert "services.web.certificate_arn" in str(refused.value)
    assert "service_connect_tls" in str(refused.value)
    # The same service with a certificate, or without TLS, is fine.
    with_certificate = PUBLIC_WITHOUT_CERTIFICATE.replace(
        "    public: true\n", f"    public: true\n    certificate_arn: {CERT_ARN}\n")
    assert topology_module.parse(with_certificate).service("web").certificate_arn == CERT_ARN
    without_tls = PUBLIC_WITHOUT_CERTIFICATE.replace(
        f"service_connect_tls:\n  private_ca_arn: {CA_ARN}\n", "")
    assert topology_module.parse(without_tls).service("web").public


def test_the_refusal_is_one_line_exit_2_and_writes_nothing(tmp_path):
    topology = write_project(tmp_path / "p", PUBLIC_WITHOUT_CERTIFICATE, directories=())
    out = tmp_path / "templates"
    out.mkdir()
    (out / "keep.txt").write_text("untouched", encoding="utf-8")
    before = snapshot(out)
    result = run_cli("generate", "--topology", topology, "--out", out)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "services.web.certificate_arn" in result.stderr
    assert snapshot(out) == before
