"""AWS quotas the generated templates and pipeline must stay inside, each with its source.

generate checks every one of them before writing (generator.quotacheck), and the tests
check the rendered files against them independently of the code that renders them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quota:
    name: str
    limit: int
    source: str  # the documentation page that states it
    adjustable: bool = False


CFN_QUOTAS = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html"
EC2_SG_QUOTAS = "https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html#vpc-limits-security-groups"
PIPELINE_QUOTAS = "https://docs.aws.amazon.com/codepipeline/latest/userguide/limits.html"
IAM_QUOTAS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html"

RESOURCES_PER_TEMPLATE = Quota("resources per template", 500, CFN_QUOTAS)
OUTPUTS_PER_TEMPLATE = Quota("outputs per template", 200, CFN_QUOTAS)
PARAMETERS_PER_TEMPLATE = Quota("parameters per template", 200, CFN_QUOTAS)
# CreateStack/UpdateStack/CreateChangeSet's TemplateBody; a larger template goes by S3 URL.
TEMPLATE_BODY_BYTES = Quota("template body passed inline", 51_200, CFN_QUOTAS)
TEMPLATE_URL_BYTES = Quota("template body in S3", 1_000_000, CFN_QUOTAS)
# Any parameter's value, whatever its type: a CommaDelimitedList (Callers) has no
# MaxLength to say so in the template.
PARAMETER_VALUE_BYTES = Quota("bytes per parameter value", 4_096, CFN_QUOTAS)
STACKS_PER_ACCOUNT = Quota("stacks per account and region", 2000, CFN_QUOTAS, adjustable=True)
EXPORTS_PER_ACCOUNT = Quota("exports per account and region", 5000, CFN_QUOTAS)
# Inbound rules per security group, default; adjustable in Service Quotas, and a topology
# that has raised it declares the new value (quotas.security_group_inbound_rules).
SECURITY_GROUP_INBOUND_RULES = Quota("inbound rules per security group", 60, EC2_SG_QUOTAS,
                                     adjustable=True)
SECURITY_GROUPS_PER_VPC = Quota("security groups per VPC", 2500, EC2_SG_QUOTAS, adjustable=True)
STAGES_PER_PIPELINE = Quota("stages per pipeline", 50, PIPELINE_QUOTAS)
ACTIONS_PER_STAGE = Quota("actions per stage", 50, PIPELINE_QUOTAS)
ACTIONS_PER_PIPELINE = Quota("actions per pipeline", 500, PIPELINE_QUOTAS)
ROLE_INLINE_POLICY_CHARS = Quota("inline policy characters per role (aggregate)", 10_240,
                                 IAM_QUOTAS)
MANAGED_POLICY_CHARS = Quota("managed policy characters", 6_144, IAM_QUOTAS)
MANAGED_POLICIES_PER_ROLE = Quota("managed policies attached to a role", 10, IAM_QUOTAS,
                                  adjustable=True)

# CloudWatch (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html,
# and alarm-limits.html): "No limit on the total number of alarms per account"; "Alarms
# based on metric math expressions can have up to 10 metrics" (hard limit);
# PutMetricAlarm is throttled at 3 requests a second per Region, which CloudFormation's
# own retries absorb when it creates a stack's alarms.
CLOUDWATCH_QUOTAS = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html"
METRICS_PER_MATH_ALARM = Quota("metrics per metric math alarm", 10,
                               "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-limits.html")
ALARMS_PER_ACCOUNT = None  # no limit (CLOUDWATCH_QUOTAS)
# The public price of a standard-resolution alarm, per alarm metric and month, in
# us-east-1 (https://aws.amazon.com/cloudwatch/pricing/, "Alarms"; a metric math alarm is
# billed for each metric it reads). A figure for the README's cost table, not a quota.
ALARM_METRIC_MONTHLY_USD = 0.10

# Per-request limits of the APIs the deployer calls.
ECS_DESCRIBE_SERVICES_API = "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServices.html"
# "You may specify up to 10 services to describe in a single operation."
SERVICES_PER_DESCRIBE_SERVICES = Quota("services per DescribeServices call", 10,
                                       ECS_DESCRIBE_SERVICES_API)
CLOUDWATCH_DESCRIBE_ALARMS_API = ("https://docs.aws.amazon.com/AmazonCloudWatch/latest/"
                                  "APIReference/API_DescribeAlarms.html")
# AlarmNames: "Array Members: Maximum number of 100 items"; MaxRecords: 1 to 100.
ALARMS_PER_DESCRIBE_ALARMS = Quota("alarm names (and records) per DescribeAlarms call", 100,
                                   CLOUDWATCH_DESCRIBE_ALARMS_API)

# An assumption, not a quota: AWS publishes no request rate for the CloudFormation API;
# past it, calls fail with Throttling "Rate exceeded"
# (https://repost.aws/knowledge-center/cloudformation-rate-exceeded-error, which advises
# backing off; aws-sam-cli#2671 reports it from parallel deploys). The deployer paces its
# own CloudFormation calls to this rate and leaves the rest to botocore's retries.
CLOUDFORMATION_CALLS_PER_SECOND_ASSUMED = 5.0

# CloudWatch dashboards (generator.dashboard): "Up to 500 widgets per dashboard. Up to 500
# metrics per dashboard widget. Up to 2500 metrics per dashboard, across all widgets"
# (CloudWatch service quotas, not adjustable); a DashboardBody holds "between 0 and 500
# widget objects" (Dashboard Body Structure and Syntax).
CLOUDWATCH_QUOTAS = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html"
WIDGETS_PER_DASHBOARD = Quota("widgets per dashboard", 500, CLOUDWATCH_QUOTAS)
METRICS_PER_DASHBOARD_WIDGET = Quota("metrics per graph widget", 500, CLOUDWATCH_QUOTAS)
METRICS_PER_DASHBOARD = Quota("metrics per dashboard", 2_500, CLOUDWATCH_QUOTAS)
# An assumption, not a quota: neither page states a size for DashboardBody, and PutDashboard
# gives it as "Type: String" only. Each body is kept under 1 MB, far above what 500 widgets
# take here (a 300-service dashboard is about a fifth of it), so that a body never nears
# whatever the API enforces.
DASHBOARD_BODY_BYTES = Quota(
    "bytes of dashboard body (assumed: AWS states no size)", 1_000_000,
    "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html")
