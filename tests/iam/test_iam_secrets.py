"""Issue 15, item 1 (secrets and keys): a topology cannot hand another team's secret to a
container, and no role inside the boundary can read one or decrypt with any key except
through Secrets Manager and SSM.

Two layers, each tested: generator.topology refuses a secret or parameter whose name is
not under `<app>/` (one line, the value never shown); the boundary allows
GetSecretValue/GetParameters on `secret:<app>/*` and `parameter/<app>/*` of this account
only, and kms:Decrypt only with kms:ViaService Secrets Manager or SSM
(https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
"""
from __future__ import annotations

import pytest

from generator import render
from generator import topology as topology_module
from generator.stacks import bootstrap
from generator.topology import TopologyError
from test_iam_first_runs import ACCOUNT, APP, REGION, decide

SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{APP}/web/db-AbCdEf"
PARAMETER = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{APP}/web/api-key"
FOREIGN = [
    ("secretsmanager:GetSecretValue",
     f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:billing/db-AbCdEf"),
    # An app whose name extends this one's: the slash keeps it out.
    ("secretsmanager:GetSecretValue",
     f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{APP}-prod/db-AbCdEf"),
    ("secretsmanager:GetSecretValue",
     f"arn:aws:secretsmanager:{REGION}:210987654321:secret:{APP}/db-AbCdEf"),
    ("secretsmanager:GetSecretValue",
     f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!db-0a1b2c3d-AbCdEf"),
    ("ssm:GetParameters", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/billing/api-key"),
    ("ssm:GetParameters", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{APP}-prod/api-key"),
    ("ssm:GetParameters", f"arn:aws:ssm:{REGION}:210987654321:parameter/{APP}/api-key"),
]
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"


@pytest.fixture(scope="module")
def boundary() -> list[dict]:
    from test_iam_first_runs import TOPOLOGY

    topology = topology_module.parse(TOPOLOGY, "topology.yaml")
    template = render.bootstrap_template(topology).to_dict()
    return template["Resources"][bootstrap.PERMISSIONS_BOUNDARY]["Properties"][
        "PolicyDocument"]["Statement"]


def test_the_apps_own_secrets_stay_readable(boundary):
    assert decide(boundary, "secretsmanager:GetSecretValue", SECRET, {}) == "allow"
    assert decide(boundary, "ssm:GetParameters", PARAMETER, {}) == "allow"


@pytest.mark.parametrize("action, arn", FOREIGN, ids=[a[1].split(":", 5)[5] for a in FOREIGN])
def test_no_role_inside_the_boundary_reads_another_teams_secret(boundary, action, arn):
    assert decide(boundary, action, arn, {}) != "allow"


@pytest.mark.parametrize("via, allowed", [
    ("secretsmanager.eu-west-1.amazonaws.com", True),
    ("ssm.eu-west-1.amazonaws.com", True),
    ("s3.eu-west-1.amazonaws.com", False),
    (None, False),  # a direct kms:Decrypt call carries no kms:ViaService
])
def test_decrypt_only_through_secrets_manager_and_ssm(boundary, via, allowed):
    context = {} if via is None else {"kms:ViaService": via}
    assert (decide(boundary, "kms:Decrypt", KEY, context) == "allow") is allowed


def _topology(arn: str) -> str:
    return (f"app: {APP}\nnamespace: shop.local\nservices:\n"
            f"  web:\n    port: 8080\n    secrets:\n      DB_PASSWORD: {arn}\n")


@pytest.mark.parametrize("arn", [
    f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:billing/db-AbCdEf",
    f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{APP}-prod/db-AbCdEf",
    f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{APP}db-AbCdEf",
    f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/billing/api-key",
    f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{APP}-prod/api-key",
])
def test_a_topology_naming_another_teams_secret_is_refused(arn):
    with pytest.raises(TopologyError) as error:
        topology_module.parse(_topology(arn), "topology.yaml")
    message = str(error.value)
    assert message.startswith("topology.yaml: services.web.secrets.DB_PASSWORD: ")
    assert f"'{APP}/'" in message and "\n" not in message
    assert arn not in message


@pytest.mark.parametrize("arn", [SECRET, PARAMETER])
def test_the_apps_own_secrets_are_accepted(arn):
    topology = topology_module.parse(_topology(arn), "topology.yaml")
    assert dict(topology.service("web").secrets) == {"DB_PASSWORD": arn}


def test_the_execution_roles_decrypt_carries_the_via_service_condition():
    from generator.stacks import service

    topology = topology_module.parse(_topology(SECRET).replace(
        "    secrets:", f"    secrets_kms_key_arn: {KEY}\n    secrets:"), "topology.yaml")
    role = service.execution_role(topology).to_dict()
    (policy,) = [p for p in role["Properties"]["Policies"]
                 if isinstance(p, dict) and "Fn::If" in p]
    statements = policy["Fn::If"][1]["PolicyDocument"]["Statement"]
    decrypt = next(s["Fn::If"][1] for s in statements
                   if s["Fn::If"][1]["Action"] == ["kms:Decrypt"])
    assert decrypt["Condition"] == {"StringLike": {"kms:ViaService": [
        "secretsmanager.*.amazonaws.com", "ssm.*.amazonaws.com"]}}
