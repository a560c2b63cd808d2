"""The conformance matrix (issue 14, item 9): requirements that AWS documents, one record
each, with the page and the sentence read there. `test_conformance.py` runs the check each
record names against the templates rendered in-process (and the deployer's code where the
requirement is about API calls); `docs/conformance.md` is generated from this list and a
test keeps it current.

Only sentences read on the cited page are quoted (through the workplace's search tool);
a requirement whose page text could not be read is not recorded here. Features of the
issue's list without a record yet are listed in MISSING_FEATURES, so the gap is visible.
"""
from __future__ import annotations

from dataclasses import dataclass

ECS_API_SC_SERVICE = ("https://docs.aws.amazon.com/AmazonECS/latest/APIReference/"
                      "API_ServiceConnectService.html")
LANGUAGE_EXTENSIONS = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/"
                       "aws-languageextension-transform.html")
LANGUAGE_EXTENSIONS_REMARKS = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/"
                               "transform-aws-languageextensions.html")
EXECUTION_ROLE = ("https://docs.aws.amazon.com/AmazonECS/latest/developerguide/"
                  "task_execution_IAM_role.html")
ALB_SUBNETS = ("https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/elasticloadbalancingv2/"
               "aws.sdk.kotlin.services.elasticloadbalancingv2.model/"
               "-create-load-balancer-request/subnets.html")


@dataclass(frozen=True)
class Requirement:
    id: str
    feature: str
    url: str
    quote: str
    check: str  # the name of a function in test_conformance.py
    known_violation: str = ""  # why today's code breaks it (the test is a strict xfail)


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(
        "SC-01", "Service Connect", ECS_API_SC_SERVICE,
        "The portName must match the name of one of the portMappings from all the "
        "containers in the task definition of this Amazon ECS service.",
        "port_name_matches_a_port_mapping"),
    Requirement(
        "SC-02", "Service Connect", ECS_API_SC_SERVICE,
        "The maximum number of client aliases that you can have in this list is 1.",
        "at_most_one_client_alias"),
    Requirement(
        "SC-03", "Service Connect", ECS_API_SC_SERVICE,
        "For each ServiceConnectService, you must provide at least one clientAlias with "
        "one port.",
        "a_client_alias_with_a_port"),
    Requirement(
        "SC-04", "Cloud Map", ECS_API_SC_SERVICE,
        "The discoveryName is the name of the new AWS Cloud Map service that Amazon ECS "
        "creates for this Amazon ECS service. This must be unique within the AWS Cloud Map "
        "namespace.",
        "discovery_names_are_unique"),
    Requirement(
        "SC-05", "Cloud Map", ECS_API_SC_SERVICE,
        "The name can contain up to 64 characters. The name can include lowercase letters, "
        "numbers, underscores (_), and hyphens (-). The name can't start with a hyphen.",
        "discovery_name_pattern_is_within_the_documented_one"),
    Requirement(
        "LE-01", "LanguageExtensions transform", LANGUAGE_EXTENSIONS,
        "To use the AWS::LanguageExtensions transform, you must declare it at the top level "
        "of your CloudFormation template. [...] The declaration must use the literal string "
        "AWS::LanguageExtensions as its value.",
        "foreach_templates_declare_the_transform_literally"),
    Requirement(
        "LE-02", "LanguageExtensions transform", LANGUAGE_EXTENSIONS_REMARKS,
        "If you update a stack using a different parameter value, don't use the "
        "--use-previous-template option",
        "the_deployer_never_uses_the_previous_template"),
    Requirement(
        "ECS-01", "ECS task definition", EXECUTION_ROLE,
        "The following are common use cases for a task execution IAM role: [...] sends "
        "container logs to CloudWatch Logs using the awslogs log driver.",
        "awslogs_tasks_have_an_execution_role"),
    Requirement(
        "ECS-02", "Secrets", EXECUTION_ROLE,
        "the task definition is referencing sensitive data using Secrets Manager secrets or "
        "AWS Systems Manager Parameter Store parameters.",
        "secrets_are_readable_by_the_execution_role"),
    Requirement(
        "ALB-01", "ALB", ALB_SUBNETS,
        "[Application Load Balancers] You must specify subnets from at least two "
        "Availability Zones.",
        "public_subnets_flag_needs_two"),
)

FEATURES = (
    "ECS service", "ECS task definition", "Service Connect", "Service Connect TLS",
    "Cloud Map", "ALB", "HTTPS", "Secrets", "ECR", "Autoscaling", "CodePipeline V2",
    "Connections", "CodeBuild", "S3", "IAM boundary", "LanguageExtensions transform",
)
# Features of issue 14's list with no record yet: the next session's work.
MISSING_FEATURES = tuple(sorted(set(FEATURES) - {r.feature for r in REQUIREMENTS}))
