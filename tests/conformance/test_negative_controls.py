"""Each conformance check fails on a template that breaks its requirement: one mutation of the
rendered workloads templates per check (the requirement's id in the test id), so a check
that could never fail is found here."""
from __future__ import annotations

import copy

import pytest

from tests.conformance import checks_delivery, checks_service, kit
from tests.conformance import test_conformance as conformance

WHICH = "workloads"


def _res(docs, template, logical_id):
    return docs[template]["Resources"][logical_id]["Properties"]


def _drop_network(docs):
    del _res(docs, "service.yaml", "Service")["NetworkConfiguration"]


def _bridge_mode(docs):
    _res(docs, "service.yaml", "TaskDefinition")["NetworkMode"] = "bridge"


def _extra_memory(docs):
    rule = docs["service.yaml"]["Rules"]["FargateMemoryForCpu256"]
    rule["Assertions"][0]["Assert"]["Fn::Contains"][0].append("4096")


def _long_timeout(docs):
    container = _res(docs, "service.yaml", "TaskDefinition")["ContainerDefinitions"][0]
    container["HealthCheck"]["Fn::If"][1]["Timeout"] = 61


def _instance_targets(docs):
    _res(docs, "service.yaml", "TargetGroup")["TargetType"] = "instance"


def _access_logs_without_logs(docs):
    del _res(docs, "service.yaml", "Service")["ServiceConnectConfiguration"]["LogConfiguration"]


def _short_idle_default(docs):
    docs["service.yaml"]["Parameters"]["IdleTimeoutSeconds"]["Default"] = 5


def _tcp_port(docs):
    container = _res(docs, "service.yaml", "TaskDefinition")["ContainerDefinitions"][0]
    container["PortMappings"][0]["AppProtocol"] = "tcp"


def _resource_id(docs):
    _res(docs, "service.yaml", "ScalableTarget")["ResourceId"]["Fn::Join"][1][0] = "ecs"


def _no_max(docs):
    del _res(docs, "service.yaml", "ScalableTarget")["MaxCapacity"]


def _policy_target(docs):
    _res(docs, "service.yaml", "CpuScalingPolicy")["ScalingTargetId"] = "arn:target"


def _fixed_count(docs):
    _res(docs, "service.yaml", "Service")["DesiredCount"] = {"Ref": "DesiredCount"}


def _target_without_service(docs):
    target = _res(docs, "service.yaml", "ScalableTarget")
    target["ResourceId"] = {"Fn::Sub": "service/${ClusterStackName}/${ServiceName}"}


def _custom_scaling_role(docs):
    _res(docs, "service.yaml", "ScalableTarget")["RoleARN"] = "arn:aws:iam::1:role/scaler"


def _other_repository(docs):
    policy = next(p for p in _res(docs, "service.yaml", "ExecutionRole")["Policies"]
                  if p.get("PolicyName") == "pull-image-and-write-logs")
    pull = policy["PolicyDocument"]["Statement"][1]["Resource"][0]
    pull["Fn::Sub"] = pull["Fn::Sub"].replace("/service-*", "/app-*")


def _no_certificate(docs):
    _res(docs, "service.yaml", "HttpsListener")["Certificates"] = []


def _no_ssl_policy(docs):
    del _res(docs, "service.yaml", "HttpsListener")["SslPolicy"]


def _second_balancer(docs):
    _res(docs, "service.yaml", "HttpsListener")["LoadBalancerArn"] = {"Ref": "Other"}


def _tls_trust(docs):
    role = _res(docs, "cluster.yaml", "ServiceConnectTlsRole")
    role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"] = "ecs-tasks.amazonaws.com"


def _no_tls_rule(docs):
    del docs["service.yaml"]["Rules"]["ServiceConnectTlsNeedsTheRole"]


def _boundary_without_secrets(docs):
    statements = _res(docs, "bootstrap.yaml", "PermissionsBoundary")["PolicyDocument"]["Statement"]
    statements[:] = [s for s in statements if s.get("Sid") != "TlsSecrets"]


def _tls12_policy(docs):
    _res(docs, "service.yaml", "HttpsListener")["SslPolicy"] = "ELBSecurityPolicy-2016-08"


def _superseded(docs):
    _res(docs, "pipeline.yaml", "Pipeline")["ExecutionMode"] = "SUPERSEDED"


def _trigger_action(docs):
    trigger = _res(docs, "pipeline.yaml", "Pipeline")["Triggers"][0]
    trigger["GitConfiguration"]["SourceActionName"] = "Build"


def _trigger_branch(docs):
    push = _res(docs, "pipeline.yaml", "Pipeline")["Triggers"][0]["GitConfiguration"]["Push"][0]
    push["Branches"]["Includes"] = ["release"]


def _pipeline_trust(docs):
    role = _res(docs, "pipeline.yaml", "PipelineRole")
    role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"] = "codebuild.amazonaws.com"


def _one_prefix(docs):
    statements = _res(docs, "bootstrap.yaml", "CloudFormationDeployPolicy1")["PolicyDocument"]["Statement"]
    statements[:] = [s for s in statements if s.get("Sid") != "Codeconnections"]


def _old_prefix_only(docs):
    parameter = docs["pipeline.yaml"]["Parameters"]["ConnectionArn"]
    parameter["AllowedPattern"] = parameter["AllowedPattern"].replace("|codeconnections", "")


def _build_trust(docs):
    role = _res(docs, "pipeline.yaml", "BuildRole")
    role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"] = "codepipeline.amazonaws.com"


def _wildcard_action(docs):
    _res(docs, "pipeline.yaml", "VerifyRole")["Policies"][0]["PolicyDocument"]["Statement"][0][
        "Action"].append("ecs:*")


def _s3_artifacts(docs):
    _res(docs, "pipeline.yaml", "DeployProject")["Artifacts"] = {"Type": "NO_ARTIFACTS"}


def _unprivileged_build(docs):
    del _res(docs, "pipeline.yaml", "BuildProject")["Environment"]["PrivilegedMode"]


def _renamed_report_group(docs):
    _res(docs, "pipeline.yaml", "TestReportGroup")["Name"] = {"Fn::Sub": "${AWS::StackName}-tests"}


def _unfiltered_expiry(docs):
    rules = _res(docs, "bootstrap.yaml", "TemplateBucket")["LifecycleConfiguration"]["Rules"]
    del rules[0]["Prefix"]


def _public_policy(docs):
    block = _res(docs, "pipeline.yaml", "ArtifactBucket")["PublicAccessBlockConfiguration"]
    block["BlockPublicPolicy"] = False


def _no_tls_deny(docs):
    statement = _res(docs, "bootstrap.yaml", "TemplateBucketPolicy")["PolicyDocument"]["Statement"][0]
    statement["Condition"] = {"Bool": {"aws:SecureTransport": "true"}}


def _mutable_tags(docs):
    _res(docs, "pipeline.yaml", "ImageRepository")["ImageTagMutability"] = "MUTABLE"


def _no_scan(docs):
    del _res(docs, "pipeline.yaml", "ImageRepository")["ImageScanningConfiguration"]["ScanOnPush"]


def _any_first(docs):
    policy = _res(docs, "pipeline.yaml", "ImageRepository")["LifecyclePolicy"]
    text = policy["LifecyclePolicyText"]["Fn::Sub"]
    rule = ('{"action": {"type": "expire"}, "rulePriority": 2, "selection": '
            '{"countNumber": 1, "countType": "sinceImagePushed", "countUnit": "days", '
            '"tagStatus": "untagged"}}')
    policy["LifecyclePolicyText"]["Fn::Sub"] = text.replace('{"rules": [', '{"rules": [' + rule + ", ")


def _beyond_boundary(docs):
    _res(docs, "service.yaml", "TaskRole")["Policies"][0]["Fn::If"][1]["PolicyDocument"][
        "Statement"][0]["Action"].append("iam:CreateUser")


def _boundary_attached(docs):
    _res(docs, "bootstrap.yaml", "PermissionsBoundary")["Roles"] = [{"Ref": "CloudFormationDeployRole"}]


def _role_without_boundary(docs):
    del _res(docs, "pipeline.yaml", "VerifyRole")["PermissionsBoundary"]


MUTATIONS = {
    "SVC-01": _drop_network, "SVC-02": _bridge_mode, "SVC-03": _extra_memory,
    "SVC-05": _long_timeout, "ALB-02": _instance_targets, "SC-06": _access_logs_without_logs,
    "SC-07": _short_idle_default, "SC-08": _tcp_port,
    "AS-01": _resource_id, "AS-02": _no_max, "AS-03": _policy_target, "AS-04": _fixed_count,
    "AS-05": _target_without_service, "AS-06": _custom_scaling_role, "ECR-04": _other_repository,
    "HTTPS-01": _no_certificate, "HTTPS-02": _no_ssl_policy, "HTTPS-03": _second_balancer,
    "TLS-01": _tls_trust, "TLS-02": _no_tls_rule, "TLS-03": _boundary_without_secrets,
    "TLS-04": _tls12_policy,
    "CP-01": _superseded, "CP-02": _trigger_action, "CP-03": _trigger_branch,
    "CP-04": _pipeline_trust,
    "CONN-01": _one_prefix, "CONN-02": _old_prefix_only,
    "CB-01": _build_trust, "CB-02": _wildcard_action, "CB-03": _s3_artifacts,
    "CB-04": _unprivileged_build, "CB-05": _renamed_report_group,
    "S3-01": _unfiltered_expiry, "S3-02": _public_policy, "S3-03": _no_tls_deny,
    "ECR-01": _mutable_tags, "ECR-02": _no_scan, "ECR-03": _any_first,
    "IAMB-01": _beyond_boundary, "IAMB-02": _boundary_attached, "IAMB-03": _role_without_boundary,
}
RECORDS = {r.id: r for r in conformance.matrix.REQUIREMENTS}


@pytest.mark.parametrize("requirement_id", sorted(MUTATIONS))
def test_the_check_fails_on_a_violation(requirement_id, monkeypatch):
    mutated = copy.deepcopy(kit.documents(WHICH))
    MUTATIONS[requirement_id](mutated)
    for module in (kit, conformance, checks_delivery, checks_service):
        monkeypatch.setattr(module, "documents", lambda which: mutated)
    check = conformance.CHECKS[RECORDS[requirement_id].check]
    with pytest.raises(AssertionError):
        check(WHICH)


def test_the_unmutated_templates_pass_the_same_checks():
    for requirement_id in MUTATIONS:
        conformance.CHECKS[RECORDS[requirement_id].check](WHICH)
