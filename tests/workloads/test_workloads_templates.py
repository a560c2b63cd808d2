"""What the templates make of the workloads topology, per service: each stack resolved
with its own params file (conftest.Evaluator), as CloudFormation would resolve it."""
from __future__ import annotations

import re

from workloads_kit import (
    ACCOUNT, API_PARAMETER, CA_ARN, CERT_ARN, DB_SECRET, KMS_KEY, LEDGER, LEDGER_REPOSITORY,
    NGINX, load_yaml, params, run_cli, snapshot,
)
from generator import names
from generator.stacks import cluster as cluster_stack

PIPELINE_REPOSITORY = {"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:"
                                  "repository/${AppName}/service-*"}


def test_the_workloads_topology_generates_and_lints_clean(project):
    out = project.parent / "templates"
    result = run_cli("generate", "--topology", project, "--out", out, "--lint", "--no-cache")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "file(s) clean" in result.stdout
    # Every public service has a certificate (Service Connect TLS needs it): no note.
    assert not [line for line in result.stdout.splitlines() if "P2001" in line]
    check = run_cli("generate", "--topology", project, "--out", out, "--check")
    assert check.returncode == 0, check.stderr


def test_http_only_is_said_and_fails_nothing(project_without_tls):
    out = project_without_tls.parent / "templates"
    result = run_cli("generate", "--topology", project_without_tls, "--out", out, "--lint",
                     "--no-cache")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # admin is public without a certificate: said, and it fails nothing.
    notes = [line for line in result.stdout.splitlines() if "P2001" in line]
    assert len(notes) == 1 and "params/admin.json" in notes[0], notes
    assert "[informational] warning: public load balancer without CertificateArn" in notes[0]


def _container(resources: dict) -> dict:
    (container,) = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    return container


def test_image_uri_accepts_every_reference_the_issue_names(generated):
    pattern = load_yaml(generated / "templates" / "service.yaml")["Parameters"]["ImageUri"][
        "AllowedPattern"]
    for reference in ("nginx:1.27", "repo:tag@sha256:" + "f" * 64, NGINX, LEDGER,
                      f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/shop/service:3f2c1ab"):
        assert re.match(pattern, reference), reference
    assert not re.match(pattern, "not a reference")


def test_health_check_is_the_services_command_or_only_the_default_apps(service_stack):
    assert _container(service_stack("web"))["HealthCheck"]["Command"] == [
        "CMD", "python", "-m", "service.healthcheck"]
    assert _container(service_stack("search"))["HealthCheck"]["Command"] == [
        "CMD-SHELL", "curl -fs http://localhost/ || exit 1"]
    assert _container(service_stack("orders"))["HealthCheck"]["Command"][0] == "CMD"
    for service in ("ledger", "reports", "audit"):
        assert "HealthCheck" not in _container(service_stack(service)), service


def test_root_filesystem_follows_the_topology(service_stack):
    assert _container(service_stack("search"))["ReadonlyRootFilesystem"] is False
    assert _container(service_stack("web"))["ReadonlyRootFilesystem"] is True
    # ECS Exec still makes it writable.
    assert _container(service_stack("web", EnableExecuteCommand="true"))[
        "ReadonlyRootFilesystem"] is False


def _ingress_ports(resources: dict) -> set[tuple[int, str]]:
    rules = resources["LoadBalancerSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    return {(rule["FromPort"], rule.get("CidrIp") or rule["CidrIpv6"]) for rule in rules
            if rule["FromPort"] == rule["ToPort"]} | {
        ("range", r["FromPort"], r["ToPort"]) for r in rules if r["FromPort"] != r["ToPort"]}


def test_https_with_a_certificate_tls13_and_a_redirect_from_80(service_stack):
    web = service_stack("web")
    https = web["HttpsListener"]["Properties"]
    assert (https["Port"], https["Protocol"]) == (443, "HTTPS")
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["Certificates"] == [{"CertificateArn": CERT_ARN}]
    assert https["DefaultActions"][0]["Type"] == "forward"
    (redirect,) = web["Listener"]["Properties"]["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"] == {"Protocol": "HTTPS", "Port": "443",
                                          "StatusCode": "HTTP_301"}
    assert _ingress_ports(web) == {(80, "0.0.0.0/0"), (80, "::/0"), (443, "0.0.0.0/0"),
                                   (443, "::/0")}


def test_a_public_service_without_a_certificate_stays_http_only(service_stack):
    # (Only possible without Service Connect TLS: topology.yaml refuses it with TLS.)
    admin = service_stack("admin", CertificateArn="", **{names.TLS_CA_PARAMETER: "",
                                                         names.TLS_ROLE_PARAMETER: ""})
    assert "HttpsListener" not in admin
    (forward,) = admin["Listener"]["Properties"]["DefaultActions"]
    assert forward["Type"] == "forward"
    assert _ingress_ports(admin) == {(80, "0.0.0.0/0"), (80, "::/0")}
    assert "LoadBalancer" not in service_stack("orders")  # not public: no load balancer


def _execution_statements(resources: dict) -> dict[str, list]:
    """action -> resources, over the execution role's inline policies."""
    found: dict[str, list] = {}
    for policy in resources["ExecutionRole"]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            for action in statement["Action"]:
                found.setdefault(action, []).extend(statement["Resource"])
    return found


def test_secrets_become_container_secrets_and_the_role_reads_exactly_those(service_stack):
    web = service_stack("web")
    assert {s["Name"]: s["ValueFrom"] for s in _container(web)["Secrets"]} == {
        "DB_PASSWORD": DB_SECRET, "API_KEY": API_PARAMETER}
    statements = _execution_statements(web)
    assert statements["secretsmanager:GetSecretValue"] == [DB_SECRET]
    assert statements["ssm:GetParameters"] == [API_PARAMETER]
    assert statements["kms:Decrypt"] == [KMS_KEY]
    # admin has one SSM parameter and no key: no Secrets Manager, no kms:Decrypt.
    admin = _execution_statements(service_stack("admin"))
    assert admin["ssm:GetParameters"] == [f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/shop/admin/api-key"]
    assert "secretsmanager:GetSecretValue" not in admin and "kms:Decrypt" not in admin
    # A service without secrets has no such policy and no container secrets.
    orders = service_stack("orders")
    assert _container(orders)["Secrets"] == []
    assert not {"secretsmanager:GetSecretValue", "ssm:GetParameters", "kms:Decrypt"} & set(
        _execution_statements(orders))


def test_the_execution_role_pulls_from_the_pipelines_repository_and_the_named_one(
        service_stack):
    pull = "ecr:BatchGetImage"
    assert _execution_statements(service_stack("web"))[pull] == [PIPELINE_REPOSITORY]
    assert _execution_statements(service_stack("search"))[pull] == [PIPELINE_REPOSITORY]
    assert _execution_statements(service_stack("ledger"))[pull] == [PIPELINE_REPOSITORY,
                                                                    LEDGER_REPOSITORY]


def test_every_service_connect_entry_gets_the_private_ca(service_stack):
    for service in ("web", "orders", "search", "ledger"):
        (entry,) = service_stack(service)["Service"]["Properties"][
            "ServiceConnectConfiguration"]["Services"]
        assert entry["Tls"]["IssuerCertificateAuthority"] == {"AwsPcaAuthorityArn": CA_ARN}
        assert entry["Tls"]["RoleArn"].startswith(f"arn:aws:iam::{ACCOUNT}:role/")


def test_without_service_connect_tls_there_is_no_tls_block(service_stack):
    resources = service_stack("web", **{names.TLS_CA_PARAMETER: "",
                                        names.TLS_ROLE_PARAMETER: ""})
    (entry,) = resources["Service"]["Properties"]["ServiceConnectConfiguration"]["Services"]
    assert "Tls" not in entry


def test_the_cluster_stack_has_the_infrastructure_role_and_reports_it(generated):
    cluster = load_yaml(generated / "templates" / "cluster.yaml")
    role = cluster["Resources"][cluster_stack.TLS_ROLE]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ecs.amazonaws.com"}
    assert role["ManagedPolicyArns"] == [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/"
                                          + cluster_stack.TLS_MANAGED_POLICY}]
    assert role["PermissionsBoundary"] == {"Fn::ImportValue": "shop-bootstrap-"
                                                              "PermissionsBoundaryArn"}
    output = cluster["Outputs"][names.TLS_ROLE_OUTPUT]
    assert output["Value"] == {"Fn::GetAtt": [cluster_stack.TLS_ROLE, "Arn"]}
    assert "Export" not in output  # so turning TLS off never meets an export in use


def test_the_committed_cluster_stack_has_no_role_without_tls(repo_root):
    """Declared, so that turning TLS off can keep it until the services stop using it
    (issue 14 finding 5), but not created: the default topology has no TLS."""
    cluster = load_yaml(repo_root / "templates" / "cluster.yaml")
    wanted = cluster["Parameters"][names.TLS_ROLE_WANTED_PARAMETER]
    assert wanted["Default"] == "false" and wanted["AllowedValues"] == ["true", "false"]
    assert cluster["Resources"][cluster_stack.TLS_ROLE]["Condition"] == cluster_stack.TLS_ROLE_KEPT
    assert cluster["Outputs"][names.TLS_ROLE_OUTPUT]["Condition"] == cluster_stack.TLS_ROLE_KEPT
    assert cluster["Conditions"][cluster_stack.TLS_ROLE_KEPT] == {
        "Fn::Equals": [{"Ref": names.TLS_ROLE_WANTED_PARAMETER}, "true"]}


def test_with_tls_the_cluster_stack_wants_the_role_by_default(generated):
    cluster = load_yaml(generated / "templates" / "cluster.yaml")
    assert cluster["Parameters"][names.TLS_ROLE_WANTED_PARAMETER]["Default"] == "true"


def test_params_files_hold_arns_never_secret_values(generated):
    web = params(generated, "web")
    assert web["SecretDbPassword"] == DB_SECRET and web["SecretApiKey"] == API_PARAMETER
    assert params(generated, "orders")["SecretDbPassword"] == ""  # slot left empty
    # Deploy-time values are not in the files: the deployer supplies them.
    for name in ("ImageUri", names.TLS_ROLE_PARAMETER, names.SUBNETS_PARAMETER):
        assert name not in web


def test_plan_warns_of_http_only_and_names_no_secret(project_without_tls):
    result = run_cli("plan", "--topology", project_without_tls)
    assert result.returncode == 0, result.stderr
    assert ("Warning: services.admin is public without certificate_arn: its load balancer "
            "serves HTTP only") in result.stdout
    assert "services.web is public without" not in result.stdout
    assert "internet -->|ALB :443 HTTPS| svc_web" in result.stdout
    for arn in (DB_SECRET, API_PARAMETER, KMS_KEY):
        assert arn not in result.stdout


def test_a_generate_with_a_quota_refusal_writes_nothing_either(tmp_path):
    """Each distinct secret name is a parameter of the one template: 200 at most."""
    from workloads_kit import write_project

    # 200 names over two services (100 each keeps each execution role's policy in size).
    first = " ".join(f"S{i}: {DB_SECRET}," for i in range(100))
    second = " ".join(f"S{i}: {DB_SECRET}," for i in range(100, 200))
    topology = write_project(tmp_path, "app: shop\nnamespace: shop.local\nservices:\n"
                             f"  web:\n    port: 80\n    secrets: {{{first}}}\n"
                             f"  api:\n    port: 80\n    secrets: {{{second}}}\n",
                             directories=())
    out = tmp_path / "templates"
    result = run_cli("generate", "--topology", topology, "--out", out)
    assert result.returncode == 2
    assert result.stderr.startswith("error: service.yaml: ") and len(
        result.stderr.splitlines()) == 1
    assert "secret names" in result.stderr
    assert snapshot(tmp_path).keys() == {"topology.yaml"}


def _secrets_topology(count: int, name_length: int) -> str:
    arns = ", ".join(f"S{i}: arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/shop/{'p' * name_length}{i}"
                     for i in range(count))
    return ("app: shop\nnamespace: shop.local\nservices:\n"
            f"  web:\n    port: 80\n    secrets: {{{arns}}}\n")


def test_the_execution_roles_policy_size_is_checked_at_generate_time(tmp_path):
    """IAM allows 10,240 characters of inline policy per role; every ARN a service names
    is in its execution role's policy, so many long ones are refused before writing."""
    from workloads_kit import write_project
    from generator import quotacheck, topology as topology_module

    fits = write_project(tmp_path / "fits", _secrets_topology(30, 200), directories=())
    refused = write_project(tmp_path / "refused", _secrets_topology(45, 200), directories=())
    web = topology_module.load(fits).service("web")
    assert quotacheck.execution_role_policy_chars(topology_module.load(fits), web) < 10_240
    assert run_cli("generate", "--topology", fits, "--out", fits.parent / "t").returncode == 0

    result = run_cli("generate", "--topology", refused, "--out", refused.parent / "t")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {refused}: services.web.secrets: the execution role's "
                           "policies would be ")
    assert "over IAM's 10,240" in line
    assert snapshot(refused.parent).keys() == {"topology.yaml"}
