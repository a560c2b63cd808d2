"""The deploy role's writes on resources whose ids are generated (issue 15, item 2: paths
10, 12 and 15): security groups, load balancers, listeners, target groups, the Cloud Map
namespace; and the documented decisions for what stays on "*" there (alarms, scalable
targets). ECS, CloudWatch Logs and Route 53 are scoped by ARN or record name in
generator.stacks.bootstrap (_scopes, _route53_statements).

Per service prefix, WriteScope statements name which writes reach which resources:

- by resource tag on existing resources (`aws:ResourceTag/app`) and request tag on creation
  (`aws:RequestTag/app`), where ids are generated (security groups, load balancers,
  listeners, target groups, the Cloud Map namespace). Every stack the deploy role runs
  carries the stack tag app=<app> (generator.params.tags, generator.samconfig; with
  `environments:` app=<app>-<env>, and the conditions accept each environment's: `apps`), and
  CloudFormation propagates stack tags to each resource whose handler supports tags; the
  schemas of these types declare `tagging.taggable` and `tagOnCreate` (test:
  tests/iam/test_iam_deploy_role_scoped.py checks it type by type);
- Cloud Map's TagResource has no resource-level permission and no key naming the
  namespace: it may set app=<app> (the create authorizes it with the stack's tags) and
  change other keys, never remove app or set another app's value. RESIDUALS says what
  that leaves open.

What stays on "*" is UNSCOPED_WRITES, each with its reason; reads (Describe/Get/List)
stay on "*" (they change nothing, and the handlers' reads fail rollbacks when denied).
Each condition key is one the Service Authorization Reference lists for the action
(tests/iam/test_iam_deploy_role_scoped.py checks them with policy_sentry).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from awacs.aws import (
    Action, Allow, Condition, ForAllValuesStringNotEquals, Statement, StringEquals,
)
from troposphere import Sub

from generator.topology import Topology

# The stack tag every app stack carries (generator.params.tags) and the key the
# conditions read.
APP_TAG = "app"

READ_VERBS = ("Describe", "Get", "List")


def apps(topology: Topology) -> list[str]:
    """The apps whose stacks this account's deploy role runs: topology.yaml's app, or with
    `environments:` each environment's <app>-<env> (Topology.deployments). One
    bootstrap.yaml serves every account, so it names them all; what keeps production's
    stacks from staging's deploys is the account (generator.stacks.deployer)."""
    return list(dict.fromkeys(deployment.app for deployment in topology.deployments))


def app_tag_values(topology: Topology) -> str | list[str]:
    """A condition's value for the app tag: one app as a string (the committed template
    without environments is unchanged), several as a list (any of them)."""
    found = apps(topology)
    return found[0] if len(found) == 1 else found


@dataclass(frozen=True)
class WriteScope:
    sid: str
    actions: frozenset[str]
    resources: tuple
    conditions: tuple = ()  # awacs condition elements, all must hold

    def statement(self, present: Iterable[str]) -> Statement | None:
        names = sorted((a for a in present if a in self.actions), key=str.lower)
        if not names:
            return None
        extra = {}
        if self.conditions:
            extra["Condition"] = Condition(list(self.conditions))
        return Statement(Sid=self.sid, Effect=Allow,
                         Action=[Action(*n.split(":", 1)) for n in names],
                         Resource=list(self.resources), **extra)


# Writes of the scoped prefixes that stay on "*", and why. A write of a scoped prefix in
# neither a WriteScope nor here fails tests/iam/test_iam_deploy_role_scoped.py.
UNSCOPED_WRITES: dict[str, str] = {
    # Path 15's alarms stay open: a name scope (target tracking names its alarms
    # TargetTracking-<resource id>-AlarmHigh/Low-<uuid>) would fail every deploy, because
    # Application Auto Scaling validates the caller's CloudWatch permissions by calling
    # "the PutMetricAlarm API without any parameters" and likewise DeleteAlarms, and fails
    # RegisterScalableTarget on AccessDenied
    # (https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_permission_validation.html);
    # a request without an alarm name matches no alarm ARN pattern. No condition key of
    # these actions names the alarm either (only tags, which the alarms do not carry).
    "cloudwatch:PutMetricAlarm":
        "Application Auto Scaling validates it with a nameless request (comment above); "
        "target tracking's alarms are named by AWS, the templates' own <app>-... (issue 17)",
    "cloudwatch:DeleteAlarms": "see cloudwatch:PutMetricAlarm",
    "ec2:CreateSecurityGroup":
        "creates an empty group in a VPC; it changes no one's traffic until something "
        "attaches it, and every change to it after creation is tag-scoped",
    "application-autoscaling:RegisterScalableTarget":
        "scalable target ids are generated and the only keys are the namespace and "
        "dimension (ecs, ecs:service:DesiredCount for every app); Application Auto "
        "Scaling validates that the caller may ecs:DescribeServices and ecs:UpdateService "
        "the target, which the deploy role allows on this app's cluster only (statement Ecs)",
    "application-autoscaling:DeregisterScalableTarget": "see RegisterScalableTarget",
    "application-autoscaling:PutScalingPolicy": "see RegisterScalableTarget",
    "application-autoscaling:DeleteScalingPolicy": "see RegisterScalableTarget",
    "application-autoscaling:PutScheduledAction": "see RegisterScalableTarget",
    "application-autoscaling:DeleteScheduledAction": "see RegisterScalableTarget",
    "application-autoscaling:TagResource": "see RegisterScalableTarget",
    "application-autoscaling:UntagResource": "see RegisterScalableTarget",
}


# Paths a scoped statement narrows but does not close, and why (the report of issue 15).
RESIDUALS: dict[str, str] = {
    "servicediscovery:TagResource":
        "a foreign namespace can be tagged app=<app> (no resource-level permission, no key "
        "naming the namespace, and the create needs that very grant), after which "
        "ServicediscoveryAppNamespace reaches it; Cloud Map refuses DeleteNamespace while "
        "the namespace has services, and CloudTrail records the tagging",
}


def _arn(service: str, resource: str) -> Sub:
    return Sub("arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s"
               % (service, resource))


def _tag(kind: str, topology: Topology) -> StringEquals:
    return StringEquals(f"aws:{kind}/{APP_TAG}", app_tag_values(topology))


def scopes(topology: Topology) -> dict[str, list[WriteScope]]:
    """Per service prefix, the scoped write statements (in this order)."""
    return {
        # The documented tag-scoped security group policy: Resource security-group/* and
        # aws:ResourceTag (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_ec2_securitygroups-vpc.html);
        # tags given at creation are authorized as ec2:CreateTags with ec2:CreateAction
        # (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html).
        "ec2": [
            WriteScope(
                "Ec2AppSecurityGroups",
                frozenset({"ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress",
                           "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress",
                           "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
                           "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
                           "ec2:DeleteSecurityGroup", "ec2:CreateTags", "ec2:DeleteTags"}),
                (_arn("ec2", "security-group/*"),),
                (_tag("ResourceTag", topology),)),
            WriteScope(
                "Ec2TagNewSecurityGroups",
                frozenset({"ec2:CreateTags"}),
                (_arn("ec2", "security-group/*"),),
                (StringEquals("ec2:CreateAction", "CreateSecurityGroup"),)),
        ],
        # CreateListener's resource is the load balancer, so aws:ResourceTag is the load
        # balancer's (Service Authorization Reference, Elastic Load Balancing V2). Tags
        # given at creation need elasticloadbalancing:AddTags with
        # elasticloadbalancing:CreateAction
        # (https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/tagging-resources-during-creation.html).
        "elasticloadbalancing": [
            WriteScope(
                "ElbAppResources",
                frozenset("elasticloadbalancing:" + name for name in (
                    "AddTags", "RemoveTags", "CreateListener", "DeleteListener",
                    "ModifyListener", "ModifyListenerAttributes", "DeleteLoadBalancer",
                    "ModifyLoadBalancerAttributes", "ModifyCapacityReservation",
                    "ModifyIpPools", "SetIpAddressType", "SetSecurityGroups", "SetSubnets",
                    "DeleteTargetGroup", "ModifyTargetGroup", "ModifyTargetGroupAttributes",
                    "RegisterTargets", "DeregisterTargets")),
                (_arn("elasticloadbalancing", "*"),),
                (_tag("ResourceTag", topology),)),
            WriteScope(
                "ElbNewResources",
                frozenset({"elasticloadbalancing:CreateLoadBalancer",
                           "elasticloadbalancing:CreateTargetGroup"}),
                (_arn("elasticloadbalancing", "*"),),
                (_tag("RequestTag", topology),)),
            WriteScope(
                "ElbTagNewResources",
                frozenset({"elasticloadbalancing:AddTags"}),
                (_arn("elasticloadbalancing", "*"),),
                # One StringEquals block: awacs keeps only the last of two.
                (StringEquals({
                    "elasticloadbalancing:CreateAction":
                        ["CreateLoadBalancer", "CreateTargetGroup", "CreateListener"],
                    f"aws:RequestTag/{APP_TAG}": app_tag_values(topology)}),)),
        ],
        # Cloud Map: namespace ARNs carry a generated id; TagResource/UntagResource have no
        # resource-level permission (Service Authorization Reference, AWS Cloud Map).
        "servicediscovery": [
            WriteScope(
                "ServicediscoveryAppNamespace",
                frozenset({"servicediscovery:DeleteNamespace",
                           "servicediscovery:UpdatePrivateDnsNamespace"}),
                (_arn("servicediscovery", "namespace/*"),),
                (_tag("ResourceTag", topology),)),
            WriteScope(
                # The create operation also authorizes servicediscovery:TagResource with
                # the request's tags (Service Authorization Reference, AWS Cloud Map, API
                # operations table), so TagResource with app=<app> must be allowed too.
                "ServicediscoveryNewNamespace",
                frozenset({"servicediscovery:CreatePrivateDnsNamespace",
                           "servicediscovery:TagResource"}),
                ("*",),
                (_tag("RequestTag", topology),)),
            WriteScope(
                # Tag updates that leave the app key alone; removing it or setting it to
                # another app is refused.
                "ServicediscoveryTagsButTheAppKey",
                frozenset({"servicediscovery:TagResource", "servicediscovery:UntagResource"}),
                ("*",),
                (ForAllValuesStringNotEquals("aws:TagKeys", [APP_TAG]),)),
        ],
        # No WriteScope: every write is in UNSCOPED_WRITES (bounded through ECS).
        "application-autoscaling": [],
        # PutMetricAlarm and DeleteAlarms stay on "*" (UNSCOPED_WRITES); the tags of the
        # templates' own alarms (AWS::CloudWatch::Alarm's handlers tag and untag) go to
        # alarms named after one of the apps (generator.names.service_alarm_name).
        "cloudwatch": [
            WriteScope(
                "CloudwatchAppAlarmTags",
                frozenset({"cloudwatch:TagResource", "cloudwatch:UntagResource"}),
                tuple(_arn("cloudwatch", f"alarm:{app}-*") for app in apps(topology)),
                ()),
        ],
    }


def statements(topology: Topology, prefix: str, actions: Iterable[str]) -> list[Statement]:
    """The Allow statements of one scoped prefix: reads on "*", each WriteScope, the
    UNSCOPED_WRITES on "*"; a write in none of them also on "*" (the test names it)."""
    actions = list(actions)
    sid = "".join(part.capitalize() for part in prefix.split("-"))
    reads = [a for a in actions if a.split(":", 1)[1].startswith(READ_VERBS)]
    writes = [a for a in actions if a not in reads]
    result = []
    if reads:
        result.append(_any(sid + "Reads", reads))
    scoped = set()
    for scope in scopes(topology)[prefix]:
        statement = scope.statement(writes)
        if statement is not None:
            result.append(statement)
            scoped |= scope.actions
    rest = [a for a in writes if a not in scoped]
    if rest:
        result.append(_any(sid + "AnyResource", rest))
    return result


def _any(sid: str, names: Iterable[str]) -> Statement:
    return Statement(Sid=sid, Effect=Allow,
                     Action=[Action(*n.split(":", 1)) for n in sorted(names, key=str.lower)],
                     Resource=["*"])


def unscoped_writes(topology: Topology, actions: Iterable[str]) -> set[str]:
    """Writes of the scoped prefixes that no WriteScope names (they get "*")."""
    all_scopes = scopes(topology)
    named = set().union(*(s.actions for group in all_scopes.values() for s in group))
    return {a for a in actions if a.split(":", 1)[0] in all_scopes
            and not a.split(":", 1)[1].startswith(READ_VERBS) and a not in named}
