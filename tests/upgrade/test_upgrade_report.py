"""The approval report of `check-upgrade --format markdown|html` (issue 16, item 4): what a
change does, replayed from templates the generator renders for two topologies."""
from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from generator import cli, plan, rollout, topology, upgrade, upgradefacts, upgradereport

from test_upgrade_tls import SEED_TLS
from upgrade_fixtures import (ADD_PUBLIC, CHANGE_PORT, LEGACY, MAKE_PRIVATE, REMOVE_CLIENT, SEED,
                              deploy, render_topology)

REPO = Path(__file__).resolve().parents[2]
# SEED's client also calls a new service, api, which calls client back: api joins the
# server <-> client cycle, so the rollout rule redeploys client once the cycle is deployed.
ADD_API_IN_CYCLE = (SEED.replace("calls: [server]}", "calls: [server, api]}")
                    + "  api: {port: 9000, calls: [client]}\n")
# api outside any cycle: it deploys first and client's own update (new PeerUrls) follows.
ADD_API = SEED.replace("calls: [server]}", "calls: [server, api]}") + "  api: {port: 9000}\n"
DROP_CALL = SEED.replace("calls: [client]}", "calls: []}")  # server no longer calls client


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    cache: dict[str, Path] = {}

    def directory(text: str) -> Path:
        if text not in cache:
            cache[text] = render_topology(text, root / str(len(cache)))
        return cache[text]
    return directory


def approval_of(rendered, before: str, after: str) -> upgradefacts.Approval:
    report, old, new = upgrade.plan_from(str(rendered(before)), rendered(after))
    return upgradefacts.approval(report, old, new)


def text_of(document: str) -> str:
    """What a reader sees: HTML without its tags, or Markdown without its escapes."""
    if document.lstrip().startswith("<!DOCTYPE html>"):
        document = html.unescape(re.sub(r"<[^>]+>", " ", document))
    else:
        document = re.sub(r"\\(.)", r"\1", re.sub(r"(?<!\\)\|", " ", document))
    return " ".join(document.split())


def assert_in_both(approval: upgradefacts.Approval, *facts: str) -> None:
    markdown = text_of(upgradereport.format_markdown(approval))
    page = text_of(upgradereport.format_html(approval))
    for fact in facts:
        assert fact in markdown, fact
        assert fact in page, fact


def test_a_new_callee_in_a_cycle_names_the_caller_the_rollout_rule_restarts(rendered):
    approval = approval_of(rendered, SEED, ADD_API_IN_CYCLE)
    assert approval.report.failures == []
    # generator.ops.deploy's follow-up: the new api too (its nonce starts empty), but not
    # server, whose callee in the cycle (client) keeps its endpoint.
    assert [(r.caller, r.callee, r.how) for r in approval.restarts] == [
        ("api", "client", upgradefacts.ROLLOUT), ("client", "api", upgradefacts.ROLLOUT)]
    assert {str(edge) for edge in approval.edges_added} == {"client -> api:9000",
                                                           "api -> client:8080"}
    assert approval.edges_removed == ()
    assert approval.new_services == ("api",)
    created = {(c.stack, c.logical, c.change) for c in approval.iam}
    assert ("demo-api", "TaskRole", "created") in created
    assert ("demo-api", "ExecutionRole", "created") in created
    diagram = upgradereport.mermaid(approval)
    assert 'svc_api["api (new)"]:::new' in diagram
    assert 'svc_client -->|":9000 added"| svc_api' in diagram
    assert 'svc_client -->|":8080"| svc_server' in diagram  # unchanged: not marked
    assert_in_both(approval, "client api forced new deployment", "client -> api:9000",
                   "api -> client:8080", "demo-api TaskRole AWS::IAM::Role created",
                   "3 created, 2 updated, 0 deleted, 6 no-op(s)",
                   'svc_api["api (new)"]:::new')


def test_a_new_callee_outside_the_cycle_restarts_the_caller_by_its_own_update(rendered):
    approval = approval_of(rendered, SEED, ADD_API)
    assert [(r.caller, r.callee) for r in approval.restarts] == [("client", "api")]
    assert approval.restarts[0].how == upgradefacts.OWN_UPDATE.format(callee="api")
    # server's callees (client) keep their endpoints: no restart for server.
    assert approval.report.operation("demo-server").action == "no-op"


def test_a_port_change_names_the_replacement_its_property_and_both_edges(rendered):
    approval = approval_of(rendered, MAKE_PRIVATE, CHANGE_PORT)
    replaced = {(op.stack, r.logical, r.type, r.properties)
                for op in approval.report.operations for r in op.replacements}
    # FromPort/ToPort are create-only (AWS::EC2::SecurityGroupIngress's schema,
    # createOnlyProperties), so the rule is replaced, not updated.
    assert ("demo-server-ingress", "CallerIngressweb", "AWS::EC2::SecurityGroupIngress",
            ("FromPort", "ToPort")) in replaced
    assert [str(e) for e in approval.edges_added] == ["web -> server:9090"]
    assert [str(e) for e in approval.edges_removed] == ["web -> server:8080"]
    assert [(r.caller, r.callee) for r in approval.restarts] == [("web", "server")]
    assert_in_both(approval,
                   "demo-server-ingress CallerIngressweb AWS::EC2::SecurityGroupIngress "
                   "FromPort, ToPort", "added web -> server:9090",
                   "removed web -> server:8080", "web server its own service stack update")
    # The text format is what it was: the replacement without its property.
    text = upgrade.format_report(approval.report)
    assert ("replaced: demo-server-ingress: CallerIngressweb "
            "(AWS::EC2::SecurityGroupIngress)\n") in text


def test_a_dropped_call_removes_its_edge(rendered):
    approval = approval_of(rendered, SEED, DROP_CALL)
    assert [str(e) for e in approval.edges_removed] == ["server -> client:8080"]
    assert approval.edges_added == ()
    assert approval.restarts == ()
    assert_in_both(approval, "removed server -> client:8080")


def test_an_iam_policy_change_lists_the_actions_added(rendered):
    approval = approval_of(rendered, SEED, SEED_TLS)
    changes = {(c.stack, c.logical): c for c in approval.iam}
    step = changes[("demo-pipeline", "DeployStepRole")]
    # generator/awsfacts/operations.py: DEPLOY_TLS_OPERATIONS, for the TLS preflight.
    assert step.change == "updated"
    assert "+ Allow acm-pca:DescribeCertificateAuthority" in step.summary
    assert changes[("demo-cluster", "ServiceConnectTlsRole")].change == "created"
    assert_in_both(approval, "demo-pipeline DeployStepRole AWS::IAM::Role updated Policies "
                             "changed (+ Allow acm-pca:DescribeCertificateAuthority")


def test_the_bootstrap_stacks_policies_are_reported(rendered, tmp_path):
    old = rendered(SEED)
    new = tmp_path / "new"
    render_topology(SEED, new)
    bootstrap = new / "bootstrap.yaml"
    text = bootstrap.read_text()
    assert "              - ecr:UntagResource\n" in text
    bootstrap.write_text(text.replace("              - ecr:UntagResource\n", "", 1))
    report, old_files, new_files = upgrade.plan_from(str(old), new)
    approval = upgradefacts.approval(report, old_files, new_files)
    changed = [c for c in approval.iam if c.stack == "demo-bootstrap"]
    assert len(changed) == 1 and changed[0].change == "updated"
    assert changed[0].type == "AWS::IAM::ManagedPolicy"
    assert "PolicyDocument changed (- Allow ecr:UntagResource)" in changed[0].summary


def test_a_replaced_and_an_updated_policy_by_hand():
    policy = {
        "Parameters": {"Action": {"Type": "String"}, "Name": {"Type": "String"}},
        "Resources": {"Policy": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
            "ManagedPolicyName": {"Ref": "Name"},
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": [{"Ref": "Action"}], "Resource": "*"}]}}}},
    }
    account = upgrade.Account()
    deploy(account, "a", policy, Action="s3:GetObject", Name="one")
    deploy(account, "b", policy, Action="s3:GetObject", Name="one-b")
    before = dict(account.stacks)
    operations = [deploy(account, "a", policy, Action="s3:PutObject", Name="one"),
                  deploy(account, "b", policy, Action="s3:GetObject", Name="two-b")]
    report = upgrade.UpgradeReport("NEW", "NEW", operations, before=before,
                                   after=dict(account.stacks))
    changes = {c.stack: c for c in upgradefacts.iam_changes(report)}
    assert changes["a"].change == "updated"
    assert changes["a"].summary == ("PolicyDocument changed (+ Allow s3:PutObject, "
                                    "- Allow s3:GetObject)")
    # ManagedPolicyName is create-only (AWS::IAM::ManagedPolicy's schema).
    assert changes["b"].change == "replaced"
    assert changes["b"].summary.startswith("because ManagedPolicyName changes")


def test_user_text_is_escaped_in_html_and_markdown(rendered):
    report, old, new = upgrade.plan_from(str(rendered(SEED)), rendered(DROP_CALL))
    hostile = "<script>alert(1)</script>"
    report.operations[-1].findings.append(upgrade.Finding(
        f"stack{hostile}", "rule", f"message {hostile}", f"https://example.com/{hostile}"))
    approval = upgradefacts.approval(report, old, new, {"from": hostile})
    page = upgradereport.format_html(approval)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script") == 1  # only mermaid's
    markdown = upgradereport.format_markdown(approval)
    assert re.search(r"(?<!\\)<script", markdown) is None
    assert "message \\<script>alert(1)\\</script>" in markdown
    assert_in_both(approval, f"message {hostile}", f"stack{hostile}")


def test_the_same_input_gives_the_same_bytes(rendered):
    first = approval_of(rendered, SEED, ADD_API_IN_CYCLE)
    second = approval_of(rendered, SEED, ADD_API_IN_CYCLE)
    for render in (upgradereport.format_markdown, upgradereport.format_html):
        assert render(first) == render(second)


def run(*args: str, hash_seed: str = "0") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "generator", *args], cwd=REPO,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONHASHSEED": hash_seed})


def test_the_command_writes_html_and_prints_the_text_summary(rendered, tmp_path):
    output = tmp_path / "out" / "approval.html"
    result = run("check-upgrade", "--from", str(rendered(MAKE_PRIVATE)),
                 "--out", str(rendered(CHANGE_PORT)), "--format", "html",
                 "--output", str(output))
    assert result.returncode == 0, result.stderr
    text = run("check-upgrade", "--from", str(rendered(MAKE_PRIVATE)),
               "--out", str(rendered(CHANGE_PORT)))
    assert result.stdout == text.stdout  # the text summary, unchanged
    page = output.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "web -&gt; server:9090" in page
    assert '<pre class="mermaid">' in page and upgradereport.MERMAID_SCRIPT in page
    # Same input, same bytes, whatever order this process's sets iterate in.
    again = tmp_path / "again.html"
    run("check-upgrade", "--from", str(rendered(MAKE_PRIVATE)), "--out",
        str(rendered(CHANGE_PORT)), "--format", "html", "--output", str(again), hash_seed="1")
    assert again.read_bytes() == output.read_bytes()


def test_the_command_prints_markdown_without_output(rendered):
    result = run("check-upgrade", "--from", str(rendered(SEED)),
                 "--out", str(rendered(DROP_CALL)), "--format", "markdown")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# check-upgrade: OK")
    assert "| removed | server -> client:8080 |" in result.stdout
    assert "```mermaid" in result.stdout


def test_a_predicted_failure_links_its_documentation():
    report, old, new = upgrade.plan_from(str(LEGACY / "trio"), LEGACY / "seed")
    approval = upgradefacts.approval(report, old, new)
    [failure] = report.failures
    assert failure.rule == "export-in-use" and failure.why == upgrade.DOC_EXPORTS
    page = upgradereport.format_html(approval)
    assert page.startswith("<!DOCTYPE html>") and 'class="failed"' in page
    assert f'<a href="{upgrade.DOC_EXPORTS}">' in page
    assert f"](<{upgrade.DOC_EXPORTS}>)" in upgradereport.format_markdown(approval)
    assert_in_both(approval, "check-upgrade: 1 predicted failure(s)",
                   "demo-cluster export-in-use the update removes export "
                   "demo-cluster-TaskSecurityGroup-audit")


SERVER_PORT = SEED.replace("server: {port: 8080", "server: {port: 9090")
PAIRS = [(SEED, ADD_API_IN_CYCLE), (SEED, ADD_API), (SEED, DROP_CALL), (SEED, SERVER_PORT),
         (DROP_CALL, SEED), (MAKE_PRIVATE, CHANGE_PORT)]


@pytest.mark.parametrize("pair", range(len(PAIRS)))
def test_the_rollout_restarts_are_the_ones_the_deployer_forces(rendered, pair):
    """Read from the templates alone, the callers the report says the rollout rule restarts
    are those generator.rollout gives the deployer: a nonce that differs from the one the
    earlier topology gave the stack ("" for a new stack)."""
    before_text, after_text = PAIRS[pair]
    before, after = topology.parse(before_text), topology.parse(after_text)
    old_plan, new_plan = plan.build(before), plan.build(after)
    old_names = {service.name for service in before.services}
    forced = {redeploy.service for wave in rollout.schedule(after, new_plan)
              for redeploy in wave
              if rollout.needs_redeploy(rollout.nonce(before, old_plan, redeploy.service)
                                        if redeploy.service in old_names else "", redeploy)}
    approval = approval_of(rendered, before_text, after_text)
    assert {r.caller for r in approval.restarts if r.how == upgradefacts.ROLLOUT} == forced


def test_an_unwritable_output_is_one_line_and_exit_2(rendered, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    code = cli.main(["check-upgrade", "--from", str(rendered(SEED)), "--out",
                     str(rendered(DROP_CALL)), "--format", "markdown",
                     "--output", str(blocker / "report.md")])
    captured = capsys.readouterr()
    assert code == cli.EXIT_BAD_INPUT
    assert len(captured.err.splitlines()) == 1
    assert captured.err.startswith(f"error: {blocker / 'report.md'}: cannot write the report")


def test_markdown_to_a_file_keeps_the_text_on_stdout(rendered, tmp_path, capsys):
    output = tmp_path / "approval.md"
    code = cli.main(["check-upgrade", "--from", str(rendered(SEED)), "--out",
                     str(rendered(DROP_CALL)), "--format", "markdown", "--output", str(output)])
    assert code == cli.EXIT_OK
    assert capsys.readouterr().out.splitlines()[-1].startswith("check-upgrade: OK (")
    assert output.read_text(encoding="utf-8").startswith("# check-upgrade: OK (")


def test_a_removed_service_lists_its_deleted_stacks_and_roles(rendered):
    approval = approval_of(rendered, ADD_PUBLIC, REMOVE_CLIENT)
    deleted = {(c.stack, c.logical, c.summary) for c in approval.iam if c.change == "deleted"}
    assert deleted == {("demo-client", "TaskRole", "the stack is deleted"),
                       ("demo-client", "ExecutionRole", "the stack is deleted")}
    assert {str(e) for e in approval.edges_removed} == {"client -> server:8080",
                                                       "server -> client:8080"}
    assert_in_both(approval, "delete demo-client service.yaml",
                   "delete demo-client-network network.yaml",
                   "demo-client ExecutionRole AWS::IAM::Role deleted the stack is deleted")
