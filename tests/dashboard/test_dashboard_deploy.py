"""`deploy` puts the deployment's dashboards after a successful run, against a moto server
(PutDashboard, read back with GetDashboard): not with --dry-run, not after a failed run,
one line when a file is missing, one dashboard per environment."""
from __future__ import annotations

import json

from tests.ops.conftest import REGION
from tests.ops.test_ops_environments import env_deploy, two_accounts  # noqa: F401


def dashboard_names(client) -> list[str]:
    return sorted(d["DashboardName"] for d in client("cloudwatch").list_dashboards()
                  ["DashboardEntries"])


def test_a_deploy_puts_the_dashboard_of_the_file(project, run, boto):
    code, out, err = run(project.first_deploy_argv())
    assert (code, err) == (0, "")
    put = boto("cloudwatch").get_dashboard(DashboardName="shop")
    body = json.loads(put["DashboardBody"])
    expected = json.loads((project.templates / "dashboards" / "shop.json").read_text())
    # The file's body, with the Region the deploy ran in on every metric widget.
    for widget in expected["widgets"]:
        if widget["type"] == "metric":
            widget["properties"]["region"] = REGION
    assert body == expected
    assert "dashboard put from dashboards/shop.json" in out
    assert dashboard_names(boto) == ["shop"]


def test_a_dry_run_puts_no_dashboard(project, run, boto):
    code, out, err = run(project.first_deploy_argv("--dry-run"))
    assert (code, err) == (0, "")
    assert dashboard_names(boto) == []
    assert "dry run: dashboard would be put from dashboards/shop.json" in out


def test_a_failed_run_puts_no_dashboard(project, run, boto):
    document = project.params("store")  # as tests/ops: a cluster that does not exist
    document["Parameters"]["ClusterStackName"] = "no-such-cluster"
    project.write_params("store", document)
    code, _, _ = run(project.first_deploy_argv())
    assert code == 1
    assert dashboard_names(boto) == []


def test_a_missing_dashboard_file_fails_the_run_in_one_line(project, run, boto):
    (project.templates / "dashboards" / "shop.json").unlink()
    code, out, err = run(project.first_deploy_argv())
    assert code == 1
    assert err.count("\n") == 1
    assert "dashboards/shop.json: not found; run `python -m generator generate`" in err
    assert dashboard_names(boto) == []


def test_each_environment_puts_its_own_dashboard_in_its_own_account(two_accounts, run,  # noqa: F811
                                                                    boto, moto):
    project, production = two_accounts
    assert run(env_deploy(project, "staging"))[0] == 0
    assert dashboard_names(boto) == ["shop-staging"]
    assert run(env_deploy(project, "production"))[0] == 0
    assert dashboard_names(production) == ["shop-production"]
    assert dashboard_names(boto) == ["shop-staging"]
    body = json.loads(production("cloudwatch").get_dashboard(
        DashboardName="shop-production")["DashboardBody"])
    clusters = {line[3] for w in body["widgets"] if w["type"] == "metric"
                for line in w["properties"]["metrics"] if line[2] == "ClusterName"}
    assert clusters == {"shop-production-cluster"}


def test_the_dashboards_of_an_earlier_larger_split_are_deleted(project, run, boto):
    cloudwatch = boto("cloudwatch")
    for name in ("shop_2", "shop_3", "shop_5", "shop-team"):  # _5: not next in the sequence
        cloudwatch.put_dashboard(DashboardName=name, DashboardBody='{"widgets": []}')
    code, out, err = run(project.first_deploy_argv("--dry-run"))
    assert (code, err) == (0, "")
    assert "shop_2" in dashboard_names(boto) and "dashboard would be deleted" in out

    code, out, err = run(project.first_deploy_argv())
    assert (code, err) == (0, "")
    assert dashboard_names(boto) == ["shop", "shop-team", "shop_5"]
    assert "dashboard deleted: shop needs 1 dashboard(s) now" in out
