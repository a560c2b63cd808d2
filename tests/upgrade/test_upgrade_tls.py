"""Issue 14 finding 5, as check-upgrade models it: turning Service Connect TLS off.

service-connect-tls.html's infrastructure-as-code note has the infrastructure role (with
the CA and the key) deleted after the services that use it
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-connect-tls.html).
Today's main removes the role from cluster.yaml with service_connect_tls, so the cluster
update at the start of the deploy deletes it while every service stack still hands it to
its ServiceConnectTlsConfiguration; the model must predict that, and that the new order
(keep the role through the service waves, remove it in a last cluster update) is clean.
"""
from __future__ import annotations

import copy
import dataclasses

from generator import upgrade
from upgrade_fixtures import SEED, render_topology

CA = ("arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/"
      "0f3c1d2e-1111-2222-3333-444455556666")
SEED_TLS = SEED.replace("services:", f"service_connect_tls:\n  private_ca_arn: {CA}\nservices:")
ROLE = "ServiceConnectTlsRole"


def _as_on_main(files: upgrade.TemplatesDir) -> upgrade.TemplatesDir:
    """cluster.yaml as today's main renders it: the role only with service_connect_tls,
    no parameter or condition for it."""
    cluster = files.templates["cluster.yaml"]
    document = copy.deepcopy(cluster.document)
    document["Parameters"].pop(upgrade.TLS_ROLE_WANTED)
    kept = document["Conditions"].pop("ServiceConnectTlsRoleKept")
    assert kept == {"Fn::Equals": [{"Ref": upgrade.TLS_ROLE_WANTED}, "true"]}
    tls_on = cluster_default(cluster) == "true"
    for section in ("Resources", "Outputs"):
        for logical in list(document[section]):
            if document[section][logical].get("Condition") == "ServiceConnectTlsRoleKept":
                if tls_on:
                    del document[section][logical]["Condition"]
                else:
                    del document[section][logical]
    templates = dict(files.templates)
    templates["cluster.yaml"] = upgrade.TemplateFile("cluster.yaml", cluster.size, document)
    return dataclasses.replace(files, templates=templates)


def cluster_default(cluster: upgrade.TemplateFile) -> str:
    return str(cluster.parameters[upgrade.TLS_ROLE_WANTED]["Default"])


def _dirs(tmp_path):
    on = upgrade.read_templates_dir(render_topology(SEED_TLS, tmp_path / "on"))
    off = upgrade.read_templates_dir(render_topology(SEED, tmp_path / "off"))
    return on, off


def test_todays_single_step_removal_is_predicted_to_break_the_services(tmp_path):
    on, off = _dirs(tmp_path)
    report = upgrade.plan_upgrade(_as_on_main(on), _as_on_main(off))
    (finding,) = [f for f in report.failures if f.rule == "deleted-in-use"]
    assert finding.stack == "demo-cluster"
    assert ROLE in finding.message
    assert "demo-client" in finding.message and "demo-server" in finding.message
    assert finding.why == upgrade.DOC_SERVICE_CONNECT_TLS
    # One cluster update, before every service stack.
    clusters = [i for i, op in enumerate(report.operations) if op.stack == "demo-cluster"]
    services = [i for i, op in enumerate(report.operations)
                if op.stack in ("demo-server", "demo-client")]
    assert len(clusters) == 1 and clusters[0] < min(services)


def test_the_new_order_keeps_the_role_through_the_services_then_removes_it(tmp_path):
    on, off = _dirs(tmp_path)
    assert cluster_default(on.templates["cluster.yaml"]) == "true"
    assert cluster_default(off.templates["cluster.yaml"]) == "false"
    report = upgrade.plan_upgrade(on, off)
    assert report.failures == [], upgrade.format_report(report)
    clusters = [i for i, op in enumerate(report.operations) if op.stack == "demo-cluster"]
    services = [i for i, op in enumerate(report.operations)
                if op.stack in ("demo-server", "demo-client")]
    assert len(clusters) == 2, upgrade.format_report(report)
    first, last = (report.operations[i] for i in clusters)
    assert clusters[0] < min(services) and max(services) < clusters[1]
    # The first changes only the template's Default: the role stays (the services still
    # pass the CA), or deleted-in-use above would say so.
    assert "after the services" not in first.by
    assert last.action == "update" and "after the services" in last.by


def test_a_second_run_after_the_removal_changes_nothing_more(tmp_path):
    """The last cluster update happens once: deploying the TLS-off templates again asks
    for no further cluster update."""
    _, off = _dirs(tmp_path)
    report = upgrade.plan_upgrade(off, off)
    assert report.failures == []
    assert [op.stack for op in report.operations].count("demo-cluster") == 1


def test_turning_tls_on_creates_the_role_before_the_services(tmp_path):
    on, off = _dirs(tmp_path)
    report = upgrade.plan_upgrade(off, on)
    assert report.failures == [], upgrade.format_report(report)
    clusters = [i for i, op in enumerate(report.operations) if op.stack == "demo-cluster"]
    assert len(clusters) == 1 and report.operations[clusters[0]].action == "update"
