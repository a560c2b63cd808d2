"""Issue 15, item 2 (paths 10-15, in part): the deploy role's writes reach this app's ECS
cluster, services and task definitions, its log groups, and the records of its own
namespace, and nothing of another app or team. Probed with the small evaluator of
test_iam_first_runs.py (explicit deny first, then allow; reference_policies_evaluation-logic.html).

ARN formats: the Service Authorization Reference (ecs: cluster, service,
service-deployment, task-definition; logs: log-group). Record names: Route 53's
route53:ChangeResourceRecordSetsNormalizedRecordNames
(https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/specifying-rrset-conditions.html).
"""
from __future__ import annotations

import pytest

from test_iam_first_runs import (  # noqa: F401 (fixtures)
    ACCOUNT, APP, REGION, decide, deploy_statements, topology,
)

ECS = f"arn:aws:ecs:{REGION}:{ACCOUNT}"
LOGS = f"arn:aws:logs:{REGION}:{ACCOUNT}"

# (action, this app's resource, another app's resource)
PATHS = [
    ("ecs:UpdateService", f"{ECS}:service/{APP}-cluster/web", f"{ECS}:service/billing-cluster/web"),
    ("ecs:DeleteService", f"{ECS}:service/{APP}-cluster/web", f"{ECS}:service/default/payments"),
    ("ecs:CreateService", f"{ECS}:service/{APP}-cluster/web",
     f"{ECS}:service/{APP}-prod-cluster/web"),
    ("ecs:UpdateCluster", f"{ECS}:cluster/{APP}-cluster", f"{ECS}:cluster/billing-cluster"),
    ("ecs:DeleteCluster", f"{ECS}:cluster/{APP}-cluster", f"{ECS}:cluster/{APP}-cluster2"),
    ("ecs:RegisterTaskDefinition", f"{ECS}:task-definition/{APP}-cluster-web:7",
     f"{ECS}:task-definition/billing-cluster-web:7"),
    ("ecs:StopServiceDeployment", f"{ECS}:service-deployment/{APP}-cluster/web/abc",
     f"{ECS}:service-deployment/billing-cluster/web/abc"),
    ("ecs:TagResource", f"{ECS}:service/{APP}-cluster/web", f"{ECS}:cluster/billing-cluster"),
    ("logs:DeleteLogGroup", f"{LOGS}:log-group:/ecs/{APP}-cluster/web",
     f"{LOGS}:log-group:/ecs/billing-cluster/web"),
    ("logs:PutRetentionPolicy", f"{LOGS}:log-group:/ecs/{APP}-cluster/web",
     f"{LOGS}:log-group:/aws/lambda/payments"),
    ("logs:CreateLogGroup", f"{LOGS}:log-group:/aws/codebuild/{APP}-pipeline-build",
     f"{LOGS}:log-group:/aws/codebuild/billing-pipeline-build"),
    ("logs:AssociateKmsKey", f"{LOGS}:log-group:/ecs/{APP}-cluster/web",
     f"{LOGS}:log-group:/ecs/{APP}-prod-cluster/web"),
]


@pytest.mark.parametrize("action, own, other", PATHS, ids=[f"{p[0]}-{p[2].split(':', 5)[5]}"
                                                           for p in PATHS])
def test_the_deploy_role_reaches_this_apps_resources_only(deploy_statements, action, own,
                                                          other):
    assert decide(deploy_statements, action, own, {}) == "allow"
    assert decide(deploy_statements, action, other, {}) != "allow"


RECORDS = "route53:ChangeResourceRecordSetsNormalizedRecordNames"


@pytest.mark.parametrize("names, allowed", [
    (["shop.local"], True),
    (["web.shop.local", "_http._tcp.web.shop.local"], True),
    (["www.example.com"], False),  # a public zone's record
    (["web.shop.local", "api.billing.local"], False),  # one foreign name spoils the batch
    (["shop.local.evil.com"], False),
    (None, False),  # no record names in the request: ForAllValues alone would hold
])
def test_route53_records_of_the_apps_namespace_only(deploy_statements, names, allowed):
    zone = "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"
    result = decide(deploy_statements, "route53:ChangeResourceRecordSets", zone,
                    {} if names is None else {RECORDS: names})
    assert (result == "allow") is allowed
