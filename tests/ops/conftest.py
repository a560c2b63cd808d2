"""Fixtures for the boto3 commands: a real moto server process, and a project whose
templates moto can execute.

moto's server is started once per test session (per xdist worker) as its own process on a
free loopback port, and stopped by its pid at the end, also when tests fail. Each test
starts from a reset moto (POST /moto-api/reset) and a clean AWS environment that points
boto3 at it through AWS_ENDPOINT_URL, which boto3 honours natively.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from generator import fingerprint, render, topology as topology_module
from generator.ops.files import _TolerantLoader

REGION = "us-east-1"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo:abc123"
# What the bootstrap stack exports on AWS; these tests deploy without one.
BOUNDARY = "arn:aws:iam::123456789012:policy/shop-permissions-boundary"
TLS_ROLE_ARN = "arn:aws:iam::123456789012:role/shop-cluster-ServiceConnectTlsRole-TEST"

# Two independent services in the first wave, then a pair that call each other (a cycle,
# like the seed's server <-> client), so one wave runs in parallel and the redeploy rule fires.
TOPOLOGY = """\
app: shop
namespace: shop.local
services:
  store:
    port: 8080
  cache:
    port: 6379
  server:
    port: 8080
    calls: [store, client]
  client:
    port: 8080
    calls: [server]
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _start_moto(log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # moto reports every ECS service as fully running; Service Connect is not modelled.
    env = {**os.environ, "MOTO_ECS_SERVICE_RUNNING": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.ops.moto_launcher", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
        cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}: {log.read_text()}")
        if _answers(url):
            return process, url
        time.sleep(0.05)
    _stop(process)
    raise RuntimeError(f"moto server did not answer on {url} within 30 s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """URL of a moto server process, shared by the session; killed by pid at the end."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    for attempt in range(3):  # a free port can be taken between the probe and the bind
        try:
            process, url = _start_moto(log)
            break
        except RuntimeError:
            if attempt == 2:
                raise
    try:
        yield url
    finally:
        _stop(process)


@pytest.fixture
def moto(moto_server, monkeypatch, tmp_path):
    """A reset moto and an environment that sends boto3 there with test credentials."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    # Nothing from the developer's ~/.aws, and no instance-metadata lookups.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return moto_server


@pytest.fixture
def boto(moto):
    """boto3 clients on the moto server, for arranging and checking what tests deploy."""
    import boto3
    from botocore.config import Config

    # No "data-" host prefix for DiscoverInstances: moto has no such host.
    config = Config(inject_host_prefix=False)

    def client(service: str):
        return boto3.client(service, region_name=REGION, endpoint_url=moto, config=config)

    return client


@dataclass
class Project:
    root: Path
    topology_path: Path
    templates: Path
    topology: topology_module.Topology
    vpc_id: str
    subnets: str
    image: str = IMAGE  # what first_deploy_argv passes as --image

    def cli(self, command: str, *extra: str) -> list[str]:
        """argv for `python -m generator <command>` on this project, fast polling."""
        return [command, "--topology", str(self.topology_path), *extra,
                "--poll-seconds", "0.01"]

    def deploy_argv(self, *extra: str) -> list[str]:
        # Unpaced: moto has no rate to stay under (test_ops_schedule checks the pacing).
        return self.cli("deploy", "--templates", str(self.templates),
                        "--permissions-boundary", BOUNDARY, "--calls-per-second", "0",
                        *extra)

    def first_deploy_argv(self, *extra: str) -> list[str]:
        return self.deploy_argv("--vpc-id", self.vpc_id, "--subnets", self.subnets,
                                "--image", IMAGE, *extra)

    def params(self, service: str) -> dict:
        return json.loads((self.templates / "params" / f"{service}.json").read_text())

    def write_params(self, service: str, document: dict) -> None:
        path = self.templates / "params" / f"{service}.json"
        path.write_text(json.dumps(document, indent=2), encoding="utf-8")


@pytest.fixture
def project(tmp_path, boto) -> Project:
    """The test topology, its params files from the real generator, and stand-in templates.

    moto cannot execute the real templates: its CloudFormation has no
    AWS::ServiceDiscovery::PrivateDnsNamespace (cluster.yaml), it misreads `!ImportValue`
    around a nested `Fn::Sub` (service.yaml), and it registers exports only on CreateStack,
    not when a change set executes. So the stand-ins keep the real templates' Parameters
    and outputs, with resources moto can create, and no cross-stack import.
    """
    return make_project(tmp_path, boto, TOPOLOGY)


@pytest.fixture
def project_factory(tmp_path, boto):
    """make_project for another topology: factory(subdir, topology_text, files=None)."""
    def make(subdir: str, topology_text: str, files: dict[str, str] | None = None) -> Project:
        return make_project(tmp_path / subdir, boto, topology_text, files)

    return make


@pytest.fixture
def tls_role_arn() -> str:
    """What the stand-in cluster stack outputs as ServiceConnectTlsRoleArn."""
    return TLS_ROLE_ARN


def make_project(tmp_path: Path, boto, topology_text: str,
                 files: dict[str, str] | None = None) -> Project:
    """`project` for any topology text; `files` (relative path -> text) are written beside
    topology.yaml first (the build directories' Dockerfiles)."""
    for relative, text in (files or {}).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
    topology_path = tmp_path / "topology.yaml"
    topology_path.write_text(topology_text, encoding="utf-8")
    topology = topology_module.load(topology_path)
    templates = tmp_path / "templates"
    render.write(templates, render.render(topology))
    real_cluster = _parameters(templates / "cluster.yaml")
    real_service = _parameters(templates / "service.yaml")
    real_network = _parameters(templates / "network.yaml")
    real_ingress = _parameters(templates / "ingress.yaml")
    for name, stand_in in (("cluster.yaml", cluster_template(topology, real_cluster)),
                           ("network.yaml", network_template(real_network)),
                           ("service.yaml", service_template(real_service)),
                           ("ingress.yaml", ingress_template(real_ingress))):
        (templates / name).write_text(fingerprinted(stand_in), encoding="utf-8")
    ec2 = boto("ec2")
    vpc_id = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]][:2]
    return Project(tmp_path, topology_path, templates, topology, vpc_id, ",".join(subnets))


def fingerprinted(stand_in: dict) -> str:
    """A stand-in's JSON body with a fingerprint in its Description, as the real templates
    have (generator.fingerprint), so the deployer can find a stack made from it unchanged."""
    described = {"Description": fingerprint.with_placeholder("stand-in"), **stand_in}
    return fingerprint.stamp(json.dumps(described, indent=2))


def _parameters(path: Path) -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_TolerantLoader)["Parameters"]


def _export(suffix: str) -> dict:
    return {"Name": {"Fn::Sub": "${AWS::StackName}-" + suffix}}


def cluster_template(topology, parameters: dict) -> dict:
    """cluster.yaml's parameters and exports; a fixed namespace instead of Cloud Map's."""
    # Named after the stack, so service stacks find it from ClusterStackName alone.
    resources = {"Cluster": {"Type": "AWS::ECS::Cluster",
                             "Properties": {"ClusterName": {"Ref": "AWS::StackName"}}}}
    outputs = {
        "ClusterName": {"Value": {"Ref": "Cluster"}, "Export": _export("ClusterName")},
        "ClusterArn": {"Value": {"Fn::GetAtt": ["Cluster", "Arn"]},
                       "Export": _export("ClusterArn")},
        "NamespaceName": {"Value": ({"Ref": "NamespaceDnsName"} if "NamespaceDnsName"
                                    in parameters else topology.namespace),
                          "Export": _export("NamespaceName")},
        "NamespaceArn": {"Value": "arn:aws:servicediscovery:us-east-1:123456789012:"
                                  "namespace/ns-test", "Export": _export("NamespaceArn")},
        "VpcId": {"Value": {"Ref": "VpcId"}, "Export": _export("VpcId")},
        "PrivateSubnetIds": {"Value": {"Ref": "PrivateSubnetIds"}},
    }
    conditions = {}
    if "ServiceConnectTlsRoleWanted" in parameters:
        # The real role exists under this condition, and so does its output.
        conditions["ServiceConnectTlsRoleKept"] = {
            "Fn::Equals": [{"Ref": "ServiceConnectTlsRoleWanted"}, "true"]}
        outputs["ServiceConnectTlsRoleArn"] = {"Value": TLS_ROLE_ARN,
                                               "Condition": "ServiceConnectTlsRoleKept"}
    elif topology.service_connect_tls:  # the real one is GetAtt of the role it creates
        outputs["ServiceConnectTlsRoleArn"] = {"Value": TLS_ROLE_ARN}
    # Lists as Strings: moto cannot update a stack that keeps a list parameter.
    parameters = {name: _as_string(spec) if "List" in spec.get("Type", "") else spec
                  for name, spec in parameters.items()}
    return {"AWSTemplateFormatVersion": "2010-09-09", "Parameters": parameters,
            **({"Conditions": conditions} if conditions else {}),
            "Resources": resources, "Outputs": outputs}


def network_template(parameters: dict) -> dict:
    """network.yaml's parameters and export; the group in the default VPC (no import)."""
    return {"AWSTemplateFormatVersion": "2010-09-09", "Parameters": parameters,
            "Resources": {"TaskSecurityGroup": {"Type": "AWS::EC2::SecurityGroup",
                                                "Properties": {"GroupDescription": "tasks"}}},
            "Outputs": {"TaskSecurityGroup": {
                "Value": {"Fn::GetAtt": ["TaskSecurityGroup", "GroupId"]},
                "Export": _export("TaskSecurityGroupId")}}}


def ingress_template(parameters: dict) -> dict:
    """ingress.yaml's parameters; moto has no AWS::LanguageExtensions (so no Fn::ForEach),
    so one handle stands in for the rules and records the callers it was given."""
    return {"AWSTemplateFormatVersion": "2010-09-09",
            "Parameters": {name: _as_string(spec) for name, spec in parameters.items()},
            "Resources": {"Rules": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {"Callers": {"Value": {"Ref": "Callers"}}}}


def service_template(parameters: dict) -> dict:
    """service.yaml's parameters; a task definition and an ECS service moto can create."""
    environment = [{"Name": name, "Value": {"Ref": name}}
                   for name in ("PeerUrls", "DeploymentNonce", "EnableExecuteCommand",
                                "PermissionsBoundaryArn")]
    environment += [{"Name": name, "Value": {"Ref": name}}
                    for name in ("Subnets", "LoadBalancerSubnets")]
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        # DesiredCount stays a Number: moto's ECS does arithmetic with it. It is carried
        # (UsePreviousValue), which moto resolves to the stored int, so it still compares.
        "Parameters": {name: spec if name == "DesiredCount" else _as_string(spec)
                       for name, spec in parameters.items()},
        "Resources": {
            "TaskDefinition": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
                "Family": {"Ref": "ServiceName"},
                "Cpu": {"Ref": "Cpu"}, "Memory": {"Ref": "Memory"},
                "NetworkMode": "awsvpc", "RequiresCompatibilities": ["FARGATE"],
                "ContainerDefinitions": [{
                    "Name": "app", "Image": {"Ref": "ImageUri"}, "Environment": environment,
                    "PortMappings": [{"ContainerPort": {"Ref": "ContainerPort"},
                                      "Name": "http"}]}]}},
            "Service": {"Type": "AWS::ECS::Service", "Properties": {
                # moto registers exports on CreateStack only, not when a change set
                # executes, so the stand-in reaches the cluster by name, not Fn::ImportValue.
                "Cluster": {"Ref": "ClusterStackName"},
                "ServiceName": {"Ref": "ServiceName"},
                "TaskDefinition": {"Ref": "TaskDefinition"},
                "DesiredCount": {"Ref": "DesiredCount"},
                "LaunchType": "FARGATE"}},
        },
        "Outputs": {
            "EcsServiceName": {"Value": {"Fn::GetAtt": ["Service", "Name"]}},
            "ServiceArn": {"Value": {"Ref": "Service"}},
        },
    }


def _as_string(spec: dict) -> dict:
    """moto compares a Number parameter's stored int with the incoming string, so an
    unchanged update never looks unchanged there; as Strings they compare as AWS does.
    moto also fails to apply an update change set that keeps a list parameter
    (it splits the stored list again), so lists become comma-separated Strings."""
    if spec.get("Type", "").startswith(("List<", "CommaDelimitedList")):
        return {k: v for k, v in spec.items() if k != "AllowedPattern"} | {"Type": "String"}
    if spec.get("Type") != "Number":
        return spec
    return {k: str(v) if k == "Default" else v for k, v in spec.items()
            if k not in ("MinValue", "MaxValue")} | {"Type": "String"}


@pytest.fixture
def run(capsys):
    """Run `python -m generator ARGV` in-process: (exit code, stdout, stderr)."""
    from generator import cli

    def invoke(argv: list[str]) -> tuple[int, str, str]:
        code = cli.main(argv)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def private_ca(boto, status: str = "ACTIVE", tags: dict[str, str] | None = None) -> str:
    """A Private CA in moto, its ARN. Tagged AmazonECSManaged=true unless `tags` says
    otherwise (what Service Connect TLS needs: generator.ops.preflight); moto lets a test
    set any status directly."""
    acmpca = boto("acm-pca")
    arn = acmpca.create_certificate_authority(
        CertificateAuthorityConfiguration={
            "KeyAlgorithm": "EC_prime256v1", "SigningAlgorithm": "SHA256WITHECDSA",
            "Subject": {"CommonName": "shop.local"}},
        CertificateAuthorityType="ROOT")["CertificateAuthorityArn"]
    if status != "PENDING_CERTIFICATE":
        acmpca.update_certificate_authority(CertificateAuthorityArn=arn, Status=status)
    tags = {"AmazonECSManaged": "true"} if tags is None else tags
    if tags:
        acmpca.tag_certificate_authority(CertificateAuthorityArn=arn, Tags=[
            {"Key": key, "Value": value} for key, value in tags.items()])
    return arn
