"""A two-environment topology: one template set, params and samconfig per environment,
quotas per account, and the commands' --env."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from generator import quotacheck, render, samconfig, topology
from generator.quotacheck import QuotaError
from tests.environments.conftest import TWO_ENVIRONMENTS


def test_one_template_set_and_params_per_environment(two_environments):
    files, documents = render.render_with_documents(two_environments)
    params = sorted(name for name in files if name.startswith("params/"))
    assert params == [f"params/{env}/{svc}.json" for env in ("production", "staging")
                      for svc in ("orders", "stock", "web")]
    production = json.loads(files["params/production/web.json"])
    staging = json.loads(files["params/staging/web.json"])
    assert production["Parameters"]["AppName"] == "shop-production"
    assert production["Parameters"]["ClusterStackName"] == "shop-production-cluster"
    assert production["Parameters"]["MaxCapacity"] == "10"
    assert staging["Parameters"]["MaxCapacity"] == "1"
    assert production["Parameters"]["EnvLogLevel"] == "info"
    assert staging["Parameters"]["EnvLogLevel"] == "debug"
    assert production["Parameters"]["PeerUrls"] == "http://orders.production.shop.internal:9090"
    assert production["Tags"]["app"] == "shop-production"
    cluster = documents["cluster.yaml"]
    assert cluster["Parameters"]["AppName"]["AllowedValues"] == ["shop-staging",
                                                                 "shop-production"]
    assert cluster["Parameters"]["NamespaceDnsName"]["AllowedValues"] == [
        "staging.shop.internal", "production.shop.internal"]


def test_the_cluster_template_names_nothing_of_one_environment(two_environments):
    """Only parameters differ between environments: no environment's app or namespace is
    written into the shared templates' resources (tags, names, exports)."""
    _, documents = render.render_with_documents(two_environments)
    for name in ("cluster.yaml", "network.yaml", "ingress.yaml", "service.yaml"):
        document = documents[name]
        text = json.dumps({key: document.get(key) for key in ("Resources", "Outputs")})
        for env in ("staging", "production"):
            assert f"shop-{env}" not in text, name
            assert f"{env}.shop.internal" not in text, name


def test_samconfig_has_a_config_env_per_stack_of_each_environment(two_environments):
    text = samconfig.render(two_environments).decode()
    assert "[shop-staging-cluster.deploy.parameters]" in text
    assert "[shop-production-web.deploy.parameters]" in text
    assert "[shop-cluster.deploy.parameters]" not in text
    entries = {e["name"]: e for e in samconfig.stacks(two_environments.in_environment(
        "production"))}
    cluster = entries["shop-production-cluster"]["parameters"]
    assert cluster == {"AppName": "shop-production",
                       "NamespaceDnsName": "production.shop.internal",
                       "VpcId": "vpc-1a1b1c1d",
                       "PrivateSubnetIds": "subnet-1a1a1a1a,subnet-1b1b1b1b",
                       "PublicSubnetIds": "subnet-1c1c1c1c,subnet-1d1d1d1d"}
    # The network is known, so a SAM user passes nothing more for the cluster.
    assert samconfig.deploy_time_parameters(two_environments.in_environment("production"),
                                            "shop-production-cluster") == ()
    production_block = text.split("[shop-production-cluster.deploy.parameters]")[1]
    assert 'region = "eu-west-1"' in production_block.split("\n\n")[0]


def test_generate_and_lint_two_environments(tmp_path):
    """Acceptance: the two-environment topology generates and lints clean."""
    source = tmp_path / "topology.yaml"
    source.write_text(TWO_ENVIRONMENTS)
    out = tmp_path / "templates"
    done = subprocess.run([sys.executable, "-m", "generator", "generate", "--topology",
                           str(source), "--out", str(out), "--lint", "--no-cache"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / "params" / "production" / "web.json").is_file()
    assert not list((out / "params").glob("*.json"))
    again = subprocess.run([sys.executable, "-m", "generator", "generate", "--topology",
                            str(source), "--out", str(out), "--check"],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr


def _environments(count: int, services: int, account: str = "111111111111",
                  separate_vpcs: bool = True) -> dict:
    from benchmarks.topologies import layered_topology

    document = layered_topology(services)
    document["environments"] = {
        f"env{index}": {"account": account, "region": "eu-west-1",
                        "network": {"vpc_id": f"vpc-{index if separate_vpcs else 0:08x}",
                                    "private_subnets": ["subnet-0a0a0a0a"],
                                    "public_subnets": ["subnet-0b0b0b0b", "subnet-0c0c0c0c"]}}
        for index in range(count)}
    return document


def test_two_environments_of_300_services_fit_one_account():
    loaded = topology.parse(yaml.safe_dump(_environments(2, 300), sort_keys=False))
    quotacheck.check_account(loaded)  # 2 + 2 x 901 = 1,804 stacks of 2,000


def test_three_environments_of_300_services_in_one_account_are_refused_in_one_line():
    loaded = topology.parse(yaml.safe_dump(_environments(3, 300), sort_keys=False))
    with pytest.raises(QuotaError) as raised:
        quotacheck.check_account(loaded)
    message = str(raised.value)
    assert "environments env0, env1, env2 (account 111111111111, eu-west-1): 900 services " \
           "need 2705 stacks, over the 2000" in message
    assert "\n" not in message


def test_environments_in_their_own_accounts_each_have_the_whole_quota():
    document = _environments(3, 300)
    for index, environment in enumerate(document["environments"].values()):
        environment["account"] = f"{index + 1:012d}"
    quotacheck.check_account(topology.parse(yaml.safe_dump(document, sort_keys=False)))


def test_environments_sharing_a_vpc_share_its_security_group_quota():
    document = _environments(9, 300, separate_vpcs=False)
    for index, environment in enumerate(document["environments"].values()):
        environment["account"] = f"{index + 1:012d}"  # stacks fit: one account each
    loaded = topology.parse(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(QuotaError, match=r"share vpc-00000000: \d+ security groups, over "
                                         r"the 2500 per VPC"):
        quotacheck.check_account(loaded)


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "generator", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.fixture
def env_project(tmp_path):
    (tmp_path / "topology.yaml").write_text(TWO_ENVIRONMENTS)
    done = _cli("generate", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path


def test_plan_and_sam_overrides_take_env(env_project):
    plan = _cli("plan", "--env", "production", cwd=env_project)
    assert plan.returncode == 0, plan.stderr
    assert "shop-production" in plan.stdout
    sam = _cli("sam-overrides", "--env", "production", "shop-production-stock",
               "ImageUri=nginx:1.27", "Subnets=subnet-1a1a1a1a",
               "LoadBalancerSubnets=subnet-1c1c1c1c,subnet-1d1d1d1d",
               "PermissionsBoundaryArn=arn:aws:iam::222222222222:policy/b", cwd=env_project)
    assert sam.returncode == 0, sam.stderr
    assert 'AppName="shop-production"' in sam.stdout


@pytest.mark.parametrize("args, message", [
    (("plan",), "topology.yaml: environments: the file has environments (staging, "
                "production): pass --env NAME"),
    (("plan", "--env", "qa"), "topology.yaml: environments: no environment 'qa' "
                              "(environments: staging, production)"),
    (("deploy", "--env", "qa", "--region", "eu-west-1"),
     "topology.yaml: environments: no environment 'qa'"),
    (("check-upgrade", "--env", "qa", "--from", "templates"),
     "topology.yaml: environments: no environment 'qa'"),
])
def test_env_mistakes_are_one_line(env_project, args, message):
    done = _cli(*args, cwd=env_project)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_env_on_a_topology_without_environments_is_one_line(tmp_path):
    (tmp_path / "topology.yaml").write_text("app: demo\nnamespace: my.demo\nservices:\n"
                                            "  a: {port: 80}\n")
    done = _cli("plan", "--env", "staging", cwd=tmp_path)
    assert done.returncode == 2
    assert "--env staging: the file has no environments" in done.stderr


def test_check_upgrade_per_environment(env_project, tmp_path_factory):
    """An environment's upgrade is replayed from its own params: adding a service that
    `orders` calls creates production's stacks for it, named after production."""
    old = tmp_path_factory.mktemp("old")
    subprocess.run(["cp", "-r", str(env_project / "templates"), str(old)], check=True)
    changed = TWO_ENVIRONMENTS.replace("    calls: [stock]\n", "    calls: [stock, audit]\n"
                                       ).replace("  stock:\n    port: 7070\n",
                                                 "  stock:\n    port: 7070\n  audit:\n"
                                                 "    port: 6060\n")
    (env_project / "topology.yaml").write_text(changed)
    assert _cli("generate", cwd=env_project).returncode == 0
    done = _cli("check-upgrade", "--env", "production", "--from", str(old / "templates"),
                cwd=env_project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "create  shop-production-audit " in done.stdout
    assert "shop-staging" not in done.stdout
    # The approval report of that environment: the new edge and the caller restarted.
    report = env_project / "approval-production.md"
    done = _cli("check-upgrade", "--env", "production", "--from", str(old / "templates"),
                "--format", "markdown", "--output", str(report), cwd=env_project)
    assert done.returncode == 0, done.stdout + done.stderr
    text = report.read_text()
    assert "orders -> audit:6060" in text  # the added edge
    assert "| orders | audit |" in text  # the caller the redeploy rule restarts
    assert "shop-production-audit" in text and "shop-staging" not in text
