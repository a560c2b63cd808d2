"""The boto3 operations the pipeline's CodeBuild steps call, and the IAM actions they need.

Operations are written as `<boto3 client name>.<OperationName>` (the API's name, as in
botocore's service model, e.g. "cloudformation.CreateChangeSet"). The steps' roles in
pipeline/iam.py are derived from these lists, and tests/iam/recording.py records what a
command really calls so a test can assert recorded <= declared.

An operation's IAM action is `<prefix>:<OperationName>` with the client's IAM prefix
(botocore's signing name), except for the few in ACTION_EXCEPTIONS; see the Service
Authorization Reference, https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html
"""
from __future__ import annotations

from typing import Iterable

# `python -m generator deploy` (generator/ops/deploy.py, stackflow.py): change sets on the
# app's stacks, their events while waiting, deleting an empty REVIEW_IN_PROGRESS stack or
# a pruned one, the cluster stack's parameters and outputs (DescribeStacks), the live
# desiredCount of each ECS service, and templates above 51,200 bytes uploaded to the
# bootstrap stack's TemplateBucket; then the deployment's CloudWatch dashboards.
DEPLOY_OPERATIONS: frozenset[str] = frozenset({
    "cloudformation.DescribeStacks",
    "cloudformation.CreateChangeSet",
    "cloudformation.DescribeChangeSet",
    "cloudformation.ExecuteChangeSet",
    "cloudformation.DeleteChangeSet",
    "cloudformation.DeleteStack",
    "cloudformation.DescribeStackEvents",
    "cloudformation.DescribeStackResource",
    # Which stacks are still running, in one paged call (generator.ops.scheduler).
    "cloudformation.ListStacks",
    "ecs.DescribeServices",
    "s3.PutObject",
    "s3.HeadObject",
    # The bake (generator/ops/bake.py): the app's alarms, by name (AlarmNames), metric
    # alarms only. The Service Authorization Reference gives cloudwatch:DescribeAlarms the
    # alarm resource type (arn:${Partition}:cloudwatch:${Region}:${Account}:alarm:
    # ${AlarmName}), so it is scoped to the app's alarm names, not "*"; only composite
    # alarms need it on "*" (API_DescribeAlarms.html).
    "cloudwatch.DescribeAlarms",
    # After a successful run, the deployment's dashboards (generator.ops.dashboards): put,
    # and those of an earlier, larger split found by name and deleted.
    "cloudwatch.PutDashboard",
    "cloudwatch.GetDashboard",
    "cloudwatch.DeleteDashboards",
})

# `deploy`'s preflight when topology.yaml has service_connect_tls (generator/ops/preflight.py):
# the CA's status and its AmazonECSManaged tag. Apart from DEPLOY_OPERATIONS because the
# deploy step's role allows them on that one CA only, and only when there is one.
DEPLOY_TLS_OPERATIONS: frozenset[str] = frozenset({
    "acm-pca.DescribeCertificateAuthority",
    "acm-pca.ListTags",
})

# Of those, the ones called without a stack name (the preflight's listing of every stack
# with the app's tags; the scheduler's ListStacks of the stacks in progress), which IAM
# authorizes against "*" only (ListStacks has no resource type in the Service
# Authorization Reference).
DEPLOY_UNNAMED_OPERATIONS: frozenset[str] = frozenset({"cloudformation.DescribeStacks",
                                                       "cloudformation.ListStacks"})

# `python -m generator verify` (generator/ops/inspect.py `gather`).
VERIFY_OPERATIONS: frozenset[str] = frozenset({
    "cloudformation.DescribeStacks",
    "cloudformation.DescribeStackEvents",
    "cloudformation.DescribeStackResource",
    "ecs.DescribeServices",
    "servicediscovery.DiscoverInstances",
    # `status` (generator/ops/health.py): the app's alarms by name, and the recent
    # Service Connect rates of its services and edges.
    "cloudwatch.DescribeAlarms",
    "cloudwatch.GetMetricData",
})

# Of those, the ones granted on "*": a metric is not an IAM resource, so GetMetricData's
# reads of the AWS/ECS metrics have no ARN to name (Service Authorization Reference,
# Amazon CloudWatch, https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html).
VERIFY_UNNAMED_OPERATIONS: frozenset[str] = frozenset({"cloudwatch.GetMetricData"})

# boto3 client name -> IAM service prefix, where they differ (botocore's signing name).
IAM_PREFIXES = {
    "elbv2": "elasticloadbalancing",
    "elb": "elasticloadbalancing",
}

# Operations whose IAM action is not named after them (Service Authorization Reference,
# Amazon S3: "HeadObject" is authorized as s3:GetObject, "HeadBucket"/"ListObjectsV2" as
# s3:ListBucket), or that need no permission at all (None: sts:GetCallerIdentity, see
# https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
ACTION_EXCEPTIONS: dict[str, str | None] = {
    "s3.HeadObject": "s3:GetObject",
    "s3.HeadBucket": "s3:ListBucket",
    "s3.ListObjectsV2": "s3:ListBucket",
    "s3.ListObjects": "s3:ListBucket",
    "sts.GetCallerIdentity": None,
}


def iam_action(operation: str) -> str | None:
    if operation in ACTION_EXCEPTIONS:
        return ACTION_EXCEPTIONS[operation]
    client, _, name = operation.partition(".")
    if not name:
        raise ValueError(f"{operation!r}: expected <client>.<OperationName>")
    return f"{IAM_PREFIXES.get(client, client)}:{name}"


def iam_actions(operations: Iterable[str]) -> set[str]:
    return {action for action in map(iam_action, operations) if action is not None}
