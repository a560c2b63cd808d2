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

ECS_CREATE_SERVICE_NETWORK = ("https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/ecs/"
                              "aws.sdk.kotlin.services.ecs.model/-create-service-request/"
                              "network-configuration.html")
ECS_PARAMETERS_NETWORK = ("https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/eventbridge/"
                          "aws.sdk.kotlin.services.eventbridge.model/-ecs-parameters/"
                          "network-configuration.html")
FARGATE_CPU_MEMORY = ("https://docs.aws.amazon.com/AmazonECS/latest/userguide/"
                      "task-cpu-memory-error.html")
SCALABLE_TARGET = ("https://docs.aws.amazon.com/goto/WebAPI/application-autoscaling-2016-02-06/"
                   "ScalableTarget")
REGISTER_SCALABLE_TARGET = ("https://docs.aws.amazon.com/cli/v1/reference/application-autoscaling/"
                            "register-scalable-target.html")
AUTOSCALING_ECS = ("https://docs.aws.amazon.com/autoscaling/application/userguide/"
                   "services-that-can-integrate-ecs.html")
HTTPS_LISTENER = ("https://docs.aws.amazon.com/elasticloadbalancing/latest/application/"
                  "create-https-listener.html")
SC_TLS = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-connect-tls.html"
INFRASTRUCTURE_ROLE = ("https://docs.aws.amazon.com/AmazonECS/latest/developerguide/"
                       "infrastructure_IAM_role.html")
CONTAINER_HEALTH_CHECK = ("https://docs.aws.amazon.com/cdk/api/latest/python/aws_cdk.aws_ecs/"
                          "HealthCheck.html")
ECS_SERVICE_LOAD_BALANCER = ("https://docs.aws.amazon.com/cdk/api/latest/docs/"
                             "@aws-cdk_aws-ecs.CfnService.LoadBalancerProperty.html")
SC_ACCESS_LOGS = ("https://docs.aws.amazon.com/AmazonECS/latest/APIReference/"
                  "API_ServiceConnectAccessLogConfiguration.html")
SC_TIMEOUTS = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
               "aws-properties-ecs-service-timeoutconfiguration.html")
SCALABLE_TARGET_RESOURCE = ("https://docs.amazonaws.cn/AWSCloudFormation/latest/UserGuide/"
                            "aws-resource-applicationautoscaling-scalabletarget.html")
ECR_ON_ECS = "https://docs.aws.amazon.com/AmazonECR/latest/userguide/ECR_on_ECS.html"
PIPELINE_EXECUTIONS = ("https://docs.aws.amazon.com/codepipeline/latest/userguide/"
                       "concepts-how-it-works.html")
PIPELINE_TRIGGER = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/"
                    "aws-properties-codepipeline-pipeline-pipelinetriggerdeclaration.html")
PIPELINE_ROLE = ("https://docs.aws.amazon.com/codepipeline/latest/userguide/"
                 "pipelines-create-service-role-cli.html")
CONNECTIONS_RENAME = "https://docs.aws.amazon.com/dtconsole/latest/userguide/rename.html"
CODEBUILD_ROLE = ("https://docs.aws.amazon.com/codebuild/latest/userguide/"
                  "setting-up-service-role.html")
CODEBUILD_ENVIRONMENT = ("https://docs.aws.amazon.com/securityhub/1.0/APIReference/"
                         "API_AwsCodeBuildProjectEnvironment.html")
CODEBUILD_REPORTS = "https://docs.aws.amazon.com/codebuild/latest/userguide/report-create.html"
CODEBUILD_ARTIFACTS = "https://docs.aws.amazon.com/goto/WebAPI/codebuild-2016-10-06/ProjectArtifacts"
S3_LIFECYCLE_FILTER = "https://docs.aws.amazon.com/goto/WebAPI/s3-2006-03-01/LifecycleRuleFilter"
S3_PUBLIC_ACCESS_BLOCK = ("https://docs.aws.amazon.com/zh_tw/AWSCloudFormation/latest/UserGuide/"
                          "aws-properties-s3-bucket-publicaccessblockconfiguration.html")
S3_IN_TRANSIT = ("https://docs.aws.amazon.com/AmazonS3/latest/userguide/"
                 "UsingEncryptionInTransit.html")
ECR_TAG_IMMUTABILITY = "https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-edit.html"
ECR_SCANNING = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
                "aws-properties-ecr-repository-imagescanningconfiguration.html")
ECR_LIFECYCLE = ("https://docs.amazonaws.cn/en_us/AmazonECR/latest/userguide/"
                 "lifecycle_policy_parameters.md")
BOUNDARIES = "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html"
PUT_BOUNDARY = ("https://docs.aws.amazon.com/es_es/IAM/latest/APIReference/"
                "API_PutUserPermissionsBoundary.html")

# Pages read at another address than the one cited: SC_TLS through a mirror of
# docs.aws.amazon.com with the same path (docs---aws.amazon.com.rproxy.goskope.com);
# S3_PUBLIC_ACCESS_BLOCK and PUT_BOUNDARY at a localized path whose text is the English
# original; ECR_LIFECYCLE and SCALABLE_TARGET_RESOURCE on docs.amazonaws.cn, AWS's copy of the
# same guides for the China Regions (the English docs.aws.amazon.com page was not stored).


@dataclass(frozen=True)
class Requirement:
    id: str
    feature: str
    url: str
    quote: str
    check: str  # a function of test_conformance.py, checks_service.py or checks_delivery.py
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
    Requirement(
        "ALB-02", "ALB", ECS_SERVICE_LOAD_BALANCER,
        "Also, when you create any target groups for these services, you must choose ip as "
        "the target type, not instance.",
        "awsvpc_target_groups_target_ips"),
    Requirement(
        "SC-06", "Service Connect", SC_ACCESS_LOGS,
        "To enable access logs, you must also specify a logConfiguration in the "
        "serviceConnectConfiguration.",
        "access_logs_come_with_a_log_configuration"),
    Requirement(
        "SC-07", "Service Connect", SC_TIMEOUTS,
        "If idleTimeout is set to a time that is less than perRequestTimeout, the connection "
        "will close when the idleTimeout is reached and not the perRequestTimeout.",
        "idle_timeout_is_not_below_the_per_request_timeout"),
    Requirement(
        "SC-08", "Service Connect", SC_TIMEOUTS,
        "perRequestTimeout can only be set if Service Connect appProtocol isn't TCP.",
        "per_request_timeouts_only_on_non_tcp_ports"),
    Requirement(
        "SVC-01", "ECS service", ECS_CREATE_SERVICE_NETWORK,
        "This parameter is required for task definitions that use the awsvpc network mode to "
        "receive their own elastic network interface, and it isn't supported for other "
        "network modes.",
        "awsvpc_services_have_a_network_configuration"),
    Requirement(
        "SVC-02", "ECS task definition", ECS_PARAMETERS_NETWORK,
        "This structure is required if LaunchType is FARGATE because the awsvpc mode is "
        "required for Fargate tasks.",
        "fargate_tasks_use_awsvpc"),
    Requirement(
        "SVC-03", "ECS task definition", FARGATE_CPU_MEMORY,
        "For task definitions that specify FARGATE for the requiresCompatibilities parameter "
        "(even if EC2 is also specified), you must use one of the values in the following "
        "table.",
        "fargate_cpu_memory_pairs_are_the_documented_ones"),
    Requirement(
        "SVC-04", "ECS task definition", CONTAINER_HEALTH_CHECK,
        "The string array must start with CMD to execute the command arguments directly, or "
        "CMD-SHELL to run the command with the container’s default shell.",
        "health_checks_start_with_cmd_or_cmd_shell"),
    Requirement(
        "SVC-05", "ECS task definition", CONTAINER_HEALTH_CHECK,
        "The time period in seconds between each health check execution. You may specify "
        "between 5 and 300 seconds.",
        "health_check_settings_are_in_range"),
    Requirement(
        "AS-01", "Autoscaling", SCALABLE_TARGET,
        "ECS service - The resource type is service and the unique identifier is the cluster "
        "name and service name.",
        "scalable_target_names_the_cluster_and_the_service"),
    Requirement(
        "AS-02", "Autoscaling", REGISTER_SCALABLE_TARGET,
        "When you register a new scalable target, you must specify values for the minimum "
        "and maximum capacity.",
        "scalable_targets_have_a_minimum_and_a_maximum"),
    Requirement(
        "AS-03", "Autoscaling", AUTOSCALING_ECS,
        "Application Auto Scaling requires a scalable target before you can create scaling "
        "policies or scheduled actions for an Amazon ECS service.",
        "scaling_policies_name_a_scalable_target"),
    Requirement(
        "AS-04", "Autoscaling", REGISTER_SCALABLE_TARGET,
        "If you add a scaling policy, current capacity is adjustable within the specified "
        "range when scaling starts.",
        "a_scaling_service_leaves_the_count_to_autoscaling"),
    Requirement(
        "AS-05", "Autoscaling", SCALABLE_TARGET_RESOURCE,
        "If the resource that you want Application Auto Scaling to scale is not yet created in "
        "your account, add a dependency on the resource when registering it as a scalable "
        "target using the DependsOn attribute.",
        "scalable_targets_wait_for_their_service"),
    Requirement(
        "AS-06", "Autoscaling", AUTOSCALING_ECS,
        "The following service-linked role is automatically created in your AWS account when "
        "registering Amazon ECS resources as scalable targets with Application Auto Scaling.",
        "autoscaling_uses_its_service_linked_role"),
    Requirement(
        "HTTPS-01", "HTTPS", HTTPS_LISTENER,
        "To create an HTTPS listener, you must deploy at least one SSL server certificate on "
        "your load balancer.",
        "https_listeners_have_a_certificate"),
    Requirement(
        "HTTPS-02", "HTTPS", HTTPS_LISTENER,
        "You must also specify a security policy, which is used to negotiate secure "
        "connections between clients and the load balancer.",
        "https_listeners_have_a_security_policy"),
    Requirement(
        "HTTPS-03", "HTTPS", HTTPS_LISTENER,
        "You can specify the same target group in multiple listeners, but these listeners "
        "must belong to the same load balancer.",
        "a_target_group_serves_one_load_balancer"),
    Requirement(
        "TLS-01", "Service Connect TLS", INFRASTRUCTURE_ROLE,
        "You want to use Transport Layer Security (TLS) to encrypt traffic between your "
        "Amazon ECS Service Connect services. You can use the "
        "AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity managed "
        "policy.",
        "tls_role_is_an_ecs_infrastructure_role"),
    Requirement(
        "TLS-02", "Service Connect TLS", INFRASTRUCTURE_ROLE,
        "An Amazon ECS infrastructure IAM role allows Amazon ECS to manage infrastructure "
        "resources in your clusters on your behalf",
        "tls_services_pass_the_infrastructure_role"),
    Requirement(
        "TLS-03", "Service Connect TLS", SC_TLS,
        "There are additional IAM permissions required to issue certificates. Amazon ECS "
        "provides a managed resource trust policy that outlines the set of permissions.",
        "the_boundary_lets_the_tls_role_work"),
    Requirement(
        "TLS-04", "Service Connect TLS", SC_TLS,
        "Configure a TLS listener with a TLS 1.3 security policy (such as "
        "ELBSecurityPolicy-TLS13-1-2-2021-06).",
        "tls_behind_a_load_balancer_uses_a_tls13_policy"),
    Requirement(
        "CP-01", "CodePipeline V2", PIPELINE_EXECUTIONS,
        "QUEUED mode: Executions are processed one by one in the order that they are queued. "
        "This requires pipeline type V2.",
        "queued_execution_needs_a_v2_pipeline"),
    Requirement(
        "CP-02", "CodePipeline V2", PIPELINE_TRIGGER,
        "This is only supported for the CodeStarSourceConnection action type.",
        "triggers_name_a_connection_source_action"),
    Requirement(
        "CP-03", "CodePipeline V2", PIPELINE_TRIGGER,
        "When a trigger configuration is specified, default change detection for repository "
        "and branch commits is disabled.",
        "the_trigger_covers_the_source_branch"),
    Requirement(
        "CP-04", "CodePipeline V2", PIPELINE_ROLE,
        "Before you create a pipeline with the AWS CLI or AWS CloudFormation, you must create "
        "a CodePipeline service role for your pipeline and attach the service role policy and "
        "the trust policy.",
        "the_pipeline_role_trusts_codepipeline"),
    Requirement(
        "CONN-01", "Connections", CONNECTIONS_RENAME,
        "When specifying a resource in the IAM policy, the service prefix needs to match that "
        "of the resource.",
        "connection_grants_match_the_resource_prefix"),
    Requirement(
        "CONN-02", "Connections", CONNECTIONS_RENAME,
        "Beginning July 1, 2024, the console creates connections with codeconnections in the "
        "resource ARN. Resources with both service prefixes will continue to display in the "
        "console.",
        "connection_arn_accepts_both_prefixes"),
    Requirement(
        "CB-01", "CodeBuild", CODEBUILD_ROLE,
        "To allow CodeBuild to interact with dependent AWS services on your behalf, you need "
        "an AWS CodeBuild service role.",
        "codebuild_projects_have_a_codebuild_service_role"),
    Requirement(
        "CB-02", "CodeBuild", CODEBUILD_ROLE,
        "If the role includes permissions that the user shouldn't have, you can "
        "unintentionally escalate a user's permissions. Ensure that the role grants least "
        "privilege.",
        "codebuild_roles_grant_no_wildcard_action"),
    Requirement(
        "CB-03", "CodeBuild", CODEBUILD_ARTIFACTS,
        "CODEPIPELINE: The build project has build output generated through CodePipeline.",
        "pipeline_projects_use_codepipeline_artifacts"),
    Requirement(
        "CB-04", "CodeBuild", CODEBUILD_ENVIRONMENT,
        "Whether to allow the Docker daemon to run inside a Docker container. Set to true if "
        "the build project is used to build Docker images.",
        "only_the_image_build_runs_privileged"),
    Requirement(
        "CB-05", "CodeBuild", CODEBUILD_REPORTS,
        "If you specify a name, CodeBuild creates a report group for you using your project "
        "name, and the name you specified, in the format <project-name>-<report-group-name>. "
        "If the named report group already exists, CodeBuild uses that report group.",
        "buildspec_reports_land_in_the_stacks_report_groups"),
    Requirement(
        "S3-01", "S3", S3_LIFECYCLE_FILTER,
        "If the Filter element is left empty, the Lifecycle Rule applies to all objects in the "
        "bucket.",
        "the_deployed_baseline_never_expires"),
    Requirement(
        "S3-02", "S3", S3_PUBLIC_ACCESS_BLOCK,
        "Setting this element to TRUE causes Amazon S3 to reject calls to PUT Bucket policy if "
        "the specified bucket policy allows public access.",
        "buckets_block_public_access"),
    Requirement(
        "S3-03", "S3", S3_IN_TRANSIT,
        "While HTTP traffic is accepted, most implementations use encryption in transit with "
        "HTTPS and TLS to protect data as it travels between clients and Amazon S3.",
        "buckets_refuse_plain_http"),
    Requirement(
        "ECR-01", "ECR", ECR_TAG_IMMUTABILITY,
        "After tag immutability is turned on, the ImageTagAlreadyExistsException error is "
        "returned if you push an image with a tag that is already in the repository.",
        "immutable_tags_are_never_pushed_twice"),
    Requirement(
        "ECR-02", "ECR", ECR_SCANNING,
        "If this parameter is not specified, it will default to false and images will not be "
        "scanned unless a scan is manually started.",
        "images_are_scanned_on_push"),
    Requirement(
        "ECR-03", "ECR", ECR_LIFECYCLE,
        "When you add rules to a lifecycle policy, you must give them each a unique value for "
        "`rulePriority`. Values don't need to be sequential across rules in a policy. A rule "
        "with a `tagStatus` value of `any` must have the highest value for `rulePriority` and "
        "be evaluated last.",
        "lifecycle_rule_priorities_are_unique_and_any_is_last"),
    Requirement(
        "ECR-04", "ECR", ECR_ON_ECS,
        "For this to work, the Amazon ECS, or Fargate, container agent must have permissions "
        "to make the ecr:BatchGetImage, ecr:GetDownloadUrlForLayer, and "
        "ecr:GetAuthorizationToken APIs.",
        "execution_roles_pull_from_the_pipeline_repository"),
    Requirement(
        "IAMB-01", "IAM boundary", BOUNDARIES,
        "An entity's permissions boundary allows it to perform only the actions that are "
        "allowed by both its identity-based policies and its permissions boundaries.",
        "roles_need_nothing_beyond_the_boundary"),
    Requirement(
        "IAMB-02", "IAM boundary", PUT_BOUNDARY,
        "A permissions boundary policy defines the maximum permissions that identity-based "
        "policies can grant to an entity, but does not grant permissions.",
        "the_boundary_grants_nothing_by_itself"),
    Requirement(
        "IAMB-03", "IAM boundary", BOUNDARIES,
        "You can use an AWS managed policy or a customer managed policy to set the boundary "
        "for an IAM entity (user or role). That policy limits the maximum permissions for the "
        "user or role.",
        "app_roles_carry_the_boundary"),
)

FEATURES = (
    "ECS service", "ECS task definition", "Service Connect", "Service Connect TLS",
    "Cloud Map", "ALB", "HTTPS", "Secrets", "ECR", "Autoscaling", "CodePipeline V2",
    "Connections", "CodeBuild", "S3", "IAM boundary", "LanguageExtensions transform",
)
# Features of issue 14's list with no record yet (empty: every feature has one).
MISSING_FEATURES = tuple(sorted(set(FEATURES) - {r.feature for r in REQUIREMENTS}))
