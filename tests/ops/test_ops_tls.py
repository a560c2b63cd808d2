"""Issue 14 finding 5: turning Service Connect TLS off removes the cluster stack's
infrastructure role only after the service stacks stopped using it.

service-connect-tls.html's infrastructure-as-code note: delete the infrastructure role,
the Private CA and the key after the services that use them
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-connect-tls.html).
On today's main the first cluster update of the run (before any service wave) deletes the
role while every service still names it in its ServiceConnectTlsConfiguration.
moto shows no outputs of a stack that a change set made, so these tests read the cluster
parameter that the role's Condition follows (ServiceConnectTlsRoleWanted).
"""
from __future__ import annotations

from generator import names
from tests.ops.conftest import private_ca

PLAIN = """\
app: shop
namespace: shop.local
services:
  store:
    port: 8080
  web:
    port: 8080
    calls: [store]
"""


def with_tls(ca: str) -> str:
    """PLAIN with Service Connect TLS on a CA the deploy preflight accepts (ACTIVE,
    tagged AmazonECSManaged=true, in moto)."""
    return PLAIN.replace("services:", f"service_connect_tls:\n  private_ca_arn: {ca}\nservices:")


def _projects(project_factory, tmp_path):
    def make(subdir: str, text: str):
        (tmp_path / subdir).mkdir(exist_ok=True)
        return project_factory(subdir, text)
    return make


def _stack(boto, name: str) -> dict:
    return boto("cloudformation").describe_stacks(StackName=name)["Stacks"][0]


def _parameters(stack: dict) -> dict[str, str]:
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack["Parameters"]}


def _cluster_updates(monkeypatch) -> list[tuple[str, dict[str, str]]]:
    """Records, for every cluster stack request, the TLS role value and which service
    stacks still used TLS at that moment."""
    from generator.ops import deploy

    seen: list[tuple[str, dict[str, str]]] = []
    original = deploy.Deployment._deploy_cluster

    def spy(self):
        users = {}
        for page in self.cfn.get_paginator("describe_stacks").paginate():
            for stack in page["Stacks"]:
                values = _parameters(stack)
                if stack["StackName"] != self.topology.cluster_stack_name:
                    users[stack["StackName"]] = values.get(names.TLS_CA_PARAMETER, "")
        seen.append((self._tls_role_wanted(), users))
        return original(self)

    monkeypatch.setattr(deploy.Deployment, "_deploy_cluster", spy)
    return seen


def test_turning_tls_off_removes_the_role_after_the_services(project_factory, run, boto,
                                                              monkeypatch, tmp_path):
    project_factory = _projects(project_factory, tmp_path)
    ca = private_ca(boto)
    on = project_factory("on", with_tls(ca))
    code, out, err = run(on.first_deploy_argv())
    assert code == 0, out + err
    cluster = _stack(boto, on.topology.cluster_stack_name)
    assert _parameters(cluster)[names.TLS_ROLE_WANTED_PARAMETER] == "true"
    assert _parameters(_stack(boto, "shop-web"))[names.TLS_CA_PARAMETER] == ca

    off = project_factory("off", PLAIN)
    updates = _cluster_updates(monkeypatch)
    code, out, err = run(off.deploy_argv("--image", off.image))
    assert code == 0, out + err
    # First the cluster keeps the role, since both service stacks still pass the CA ...
    first_wanted, first_users = updates[0]
    assert first_wanted == "true"
    assert first_users["shop-web"] == ca and first_users["shop-store"] == ca
    # ... then, after the waves, one more cluster update removes it: nobody uses TLS.
    assert len(updates) == 2, out
    last_wanted, last_users = updates[1]
    assert last_wanted == "false"
    assert {last_users["shop-web"], last_users["shop-store"]} == {""}
    assert out.index("== network, ingress and service stacks") < out.index("== cluster again")
    cluster = _stack(boto, off.topology.cluster_stack_name)
    assert _parameters(cluster)[names.TLS_ROLE_WANTED_PARAMETER] == "false"


def test_a_service_left_out_of_the_run_keeps_the_role(project_factory, run, boto, tmp_path):
    """`deploy web` leaves store on TLS: the role must stay for it."""
    project_factory = _projects(project_factory, tmp_path)
    ca = private_ca(boto)
    on = project_factory("on", with_tls(ca))
    code, out, err = run(on.first_deploy_argv())
    assert code == 0, out + err
    off = project_factory("off", PLAIN)
    code, out, err = run(off.deploy_argv("--image", off.image, "web"))
    assert code == 0, out + err
    assert _parameters(_stack(boto, "shop-store"))[names.TLS_CA_PARAMETER] == ca
    assert _parameters(_stack(boto, "shop-web"))[names.TLS_CA_PARAMETER] == ""
    cluster = _stack(boto, off.topology.cluster_stack_name)
    assert _parameters(cluster)[names.TLS_ROLE_WANTED_PARAMETER] == "true"
    assert "== cluster again" not in out
    # The next full run finishes the job.
    code, out, err = run(off.deploy_argv("--image", off.image))
    assert code == 0, out + err
    cluster = _stack(boto, off.topology.cluster_stack_name)
    assert _parameters(cluster)[names.TLS_ROLE_WANTED_PARAMETER] == "false"


def test_with_tls_on_the_cluster_is_deployed_once(project_factory, run, boto, tmp_path):
    project_factory = _projects(project_factory, tmp_path)
    ca = private_ca(boto)
    on = project_factory("on", with_tls(ca))
    code, out, err = run(on.first_deploy_argv())
    assert code == 0, out + err
    code, out, err = run(on.deploy_argv("--image", on.image))
    assert code == 0, out + err
    assert out.count("== cluster") == 1
    assert _parameters(_stack(boto, "shop-cluster"))[names.TLS_ROLE_WANTED_PARAMETER] == "true"
