"""Helpers of the workloads tests (issue 10), imported by name (a module of its own, not
conftest.py, whose name every test folder shares): a topology that uses every new field
(build directories with Dockerfiles, an image, a health check command, HTTPS, secrets with
a KMS key, Service Connect TLS), and an evaluator that resolves a template's conditions
for one service's parameters."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent.parent

ACCOUNT = "123456789012"
CA_ARN = (f"arn:aws:acm-pca:eu-west-1:{ACCOUNT}:certificate-authority/"
          "0f3c1d2e-1111-2222-3333-444455556666")
CERT_ARN = f"arn:aws:acm:eu-west-1:{ACCOUNT}:certificate/0f3c1d2e-aaaa-bbbb-cccc-444455556666"
DB_SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:shop/web-db-AbCdEf"
API_PARAMETER = f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/shop/web/api-key"
KMS_KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/0f3c1d2e-5555-6666-7777-444455556666"
NGINX = "public.ecr.aws/nginx/nginx:1.27"
LEDGER = (f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/team/ledger@sha256:"
          + "0123456789abcdef" * 4)
LEDGER_REPOSITORY = f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/team/ledger"

# Every field of issue 10 at least once. orders and audit share one build directory (one
# image); search runs a public image with its own health check; ledger a private ECR
# image without one; web is the default app, public with HTTPS and secrets; admin is
# public too (with Service Connect TLS a public service needs a certificate: issue 14).
WORKLOADS_TOPOLOGY = f"""\
app: shop
namespace: shop.local
service_connect_tls:
  private_ca_arn: {CA_ARN}
services:
  orders:
    port: 8080
    build: apps/orders
    health_check_command: [CMD, python, -c, "import urllib.request as u; u.urlopen('http://localhost:8080/')"]
  audit:
    port: 8081
    build: apps/orders/
  reports:
    port: 8082
    build: ./apps/reports
  search:
    port: 80
    image: {NGINX}
    health_check_command: [CMD-SHELL, "curl -fs http://localhost/ || exit 1"]
    health_check_path: /
    read_only_root_filesystem: false
  ledger:
    port: 9000
    image: {LEDGER}
  web:
    port: 8080
    public: true
    calls: [orders, search, ledger]
    certificate_arn: {CERT_ARN}
    environment: {{LOG_LEVEL: info}}
    secrets:
      DB_PASSWORD: {DB_SECRET}
      API_KEY: {API_PARAMETER}
    secrets_kms_key_arn: {KMS_KEY}
  admin:
    port: 8080
    public: true
    calls: [audit, reports]
    certificate_arn: {CERT_ARN}
    secrets:
      API_KEY: arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/shop/admin/api-key
"""

# The same without Service Connect TLS, where admin may be public without a certificate
# (HTTP only).
WITHOUT_TLS_TOPOLOGY = (WORKLOADS_TOPOLOGY
                        .replace(f"service_connect_tls:\n  private_ca_arn: {CA_ARN}\n", "")
                        .replace(f"    calls: [audit, reports]\n    certificate_arn: {CERT_ARN}\n",
                                 "    calls: [audit, reports]\n"))
assert WITHOUT_TLS_TOPOLOGY.count("certificate_arn") == 1
assert "service_connect_tls" not in WITHOUT_TLS_TOPOLOGY

# hadolint-clean (DL3007 wants a pinned tag, DL3002 a non-root user).
DOCKERFILE = """\
FROM public.ecr.aws/docker/library/python:3.12-slim
WORKDIR /app
COPY app.py .
USER 65534
CMD ["python", "app.py"]
"""


def write_project(root: Path, topology_text: str = WORKLOADS_TOPOLOGY,
                  directories=("apps/orders", "apps/reports")) -> Path:
    """topology.yaml and the build directories (each with a Dockerfile) under root."""
    root.mkdir(parents=True, exist_ok=True)
    for directory in directories:
        (root / directory).mkdir(parents=True, exist_ok=True)
        (root / directory / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
        (root / directory / "app.py").write_text("print('hello')\n", encoding="utf-8")
    path = root / "topology.yaml"
    path.write_text(textwrap.dedent(topology_text), encoding="utf-8")
    return path


def run_cli(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "generator", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or REPO, timeout=600)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def load_yaml(path: Path) -> dict:
    """A template with its short forms (!Ref, !If) as long forms, through cfn-flip."""
    import cfn_flip

    return json.loads(json.dumps(cfn_flip.load_yaml(path.read_text(encoding="utf-8"))))


def params(root: Path, service: str) -> dict[str, str]:
    return json.loads((root / "templates" / "params" / f"{service}.json").read_text())[
        "Parameters"]


NO_VALUE = object()


class Evaluator:
    """CloudFormation's conditions and Fn::If/Select/Split/Join for one set of parameter
    values (the template's Defaults, then `values`); anything else is left as it is."""

    def __init__(self, template: dict, values: dict[str, str]):
        self.template = template
        self.values = {name: str(spec["Default"]) for name, spec in
                       template["Parameters"].items() if "Default" in spec}
        self.values.update(values)
        self.cache: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self.cache:
            self.cache[name] = bool(self.value(self.template["Conditions"][name]))
        return self.cache[name]

    def value(self, node):
        if isinstance(node, list):
            items = [self.value(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                if arg in self.template["Parameters"] and arg in self.values:
                    raw = self.values[arg]
                    kind = self.template["Parameters"][arg].get("Type", "")
                    return raw.split(",") if kind == "CommaDelimitedList" else raw
                return node
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                left, right = (self.value(a) for a in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(a) for a in arg)
            if key == "Fn::Or":
                return any(self.value(a) for a in arg)
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(str(i) for i in self.value(items))
            if key == "Fn::Split":
                separator, text = arg
                return str(self.value(text)).split(separator)
            if key == "Fn::Select":
                index, items = arg
                return self.value(items)[int(index)]
        result = {}
        for key, item in node.items():
            value = self.value(item)
            if value is not NO_VALUE:
                result[key] = value
        return result

    def resources(self) -> dict[str, dict]:
        """The resources this service's stack would have, with their properties resolved."""
        found = {}
        for logical, resource in self.template["Resources"].items():
            if logical.startswith("Fn::ForEach::"):
                continue
            if "Condition" in resource and not self.condition(resource["Condition"]):
                continue
            found[logical] = self.value(resource)
        return found
