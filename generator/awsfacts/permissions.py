"""The IAM actions CloudFormation needs for the resource types of a template, and a check
of policy documents against them.

Source: the `handlers.<operation>.permissions` lists of the resource-provider schemas that
cfn-lint ships (generator.awsfacts.schemas; the schema format is documented at
https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html).
A stack create, update, delete or rollback calls the create, read, update and delete
handlers; `list` is only called by resource discovery (IaC generator, Cloud Control
ListResources), never by a stack operation, so it is not required here.

What the deploy role leaves out on purpose is EXCLUDED below, each with its reason; every
other action of every handler must be allowed, or `uncovered` names it. Some schemas list
API operation names that are not IAM actions (AWS::S3::Bucket: s3:DeleteBucketCors, whose
IAM action is s3:PutBucketCORS; AWS::Logs::LogGroup: s3:REST.PUT.OBJECT). Those are found
with the IAM action catalogue cfn-lint ships for its rule W3037 (data/AdditionalSpecs/
Policies.json, generated from the Service Authorization Reference), not granted (IAM
would ignore them and cfn-lint warns), and listed by `not_iam_actions`.
"""
from __future__ import annotations

import fnmatch
import functools
import importlib.util
import json
import re
from pathlib import Path
from dataclasses import dataclass
from typing import Iterable, Mapping

from generator.awsfacts import schemas

STACK_OPERATIONS = ("create", "read", "update", "delete")

# Actions a schema lists that the deploy role deliberately does not get. Keys are IAM
# wildcard patterns (matched like IAM matches actions), values the reason. Only write
# actions of features no template uses, or names that are not IAM actions, belong here:
# a read handler's Get/Describe/List is never left out (a read failing on AccessDenied
# fails drift detection and rollbacks).
EXCLUDED: dict[str, str] = {
    "iam:DeleteRolePermissionsBoundary":
        "would lift the permissions boundary off a role the deploy role created; the "
        "bootstrap template also denies it explicitly (no-escalation rule of issue 8)",
    "firehose:TagDeliveryStream":
        "AWS::Logs::LogGroup delivery to Kinesis Data Firehose; no template configures "
        "log delivery",
    "lambda:*ProvisionedConcurrencyConfig":
        "Lambda provisioned-concurrency scalable targets; the templates scale "
        "ecs:service:DesiredCount only",
    "s3tables:*":
        "S3 Metadata table configuration of AWS::S3::Bucket (MetadataTableConfiguration, "
        "MetadataConfiguration); no bucket uses it",
    "s3:CreateBucketMetadataTableConfiguration":
        "the same S3 Metadata feature, its bucket-side writes (the read, "
        "s3:GetBucketMetadataTableConfiguration, is granted)",
    "s3:DeleteBucketMetadataTableConfiguration": "see s3:CreateBucketMetadataTableConfiguration",
    "s3:UpdateBucketMetadata*TableConfiguration": "see s3:CreateBucketMetadataTableConfiguration",
    "kms:CreateGrant":
        "ECR repository encryption with a KMS key; the image repository uses AES256",
    "kms:RetireGrant":
        "ECR repository encryption with a KMS key; the image repository uses AES256",
    "cognito-idp:DescribeUserPoolClient":
        "ALB listener authenticate-cognito actions; the listener only forwards",
    "ecs:PutAccountSetting*":
        "account-wide ECS settings, which a role scoped to one app must not change; the "
        "cluster template sets cluster-level ClusterSettings only",
    "logs:PutResourcePolicy":
        "CloudWatch Logs resource policies are account-wide (they can let a service write "
        "to any log group); AWS::Logs::LogGroup ResourcePolicyDocument is not used",
    "logs:DeleteResourcePolicy":
        "see logs:PutResourcePolicy",
}

# Resource types whose schema has no handler permissions (types CloudFormation implements
# outside the registry), with the actions their CloudFormation implementation calls,
# taken from the service's API and authorization reference pages cited per type.
NO_SCHEMA_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    # https://docs.aws.amazon.com/codebuild/latest/userguide/auth-and-access-control-permissions-reference.html
    # (CreateProject/UpdateProject pass the service role: iam:PassRole to codebuild).
    "AWS::CodeBuild::Project": {
        "create": ("codebuild:CreateProject", "codebuild:BatchGetProjects", "iam:PassRole"),
        "read": ("codebuild:BatchGetProjects",),
        "update": ("codebuild:UpdateProject", "codebuild:BatchGetProjects", "iam:PassRole"),
        "delete": ("codebuild:DeleteProject", "codebuild:BatchGetProjects"),
    },
    # A CloudFormation-internal resource (a presigned URL); no service is called.
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudformation-waitconditionhandle.html
    "AWS::CloudFormation::WaitConditionHandle": {},
}

_FOR_EACH = "Fn::ForEach::"


def resource_types(template: Mapping) -> set[str]:
    """Every `Type` under Resources, including the resources inside `Fn::ForEach::<Name>`
    blocks of the AWS::LanguageExtensions transform (value: [identifier, collection,
    {logical id template: resource}], the output may itself nest another ForEach)."""
    return _types_in(template.get("Resources") or {})


def _types_in(resources: Mapping) -> set[str]:
    found = set()
    for key, value in resources.items():
        if key.startswith(_FOR_EACH):
            if isinstance(value, list) and len(value) == 3 and isinstance(value[2], Mapping):
                found |= _types_in(value[2])
            continue
        if isinstance(value, Mapping) and isinstance(value.get("Type"), str):
            found.add(value["Type"])
    return found


def handler_permissions(type_name: str) -> dict[str, tuple[str, ...]]:
    if type_name in NO_SCHEMA_PERMISSIONS:
        return dict(NO_SCHEMA_PERMISSIONS[type_name])
    permissions = schemas.schema(type_name).handler_permissions
    if not any(permissions.get(op) for op in STACK_OPERATIONS):
        # A new type without handler permissions must be looked up by hand, not skipped.
        raise schemas.UnknownResourceType(
            f"{type_name}: the schema lists no handler permissions; add it to "
            "NO_SCHEMA_PERMISSIONS with the service's documented actions")
    return permissions


def required_actions(types: Iterable[str]) -> dict[str, dict[str, set[str]]]:
    """type -> stack operation -> the IAM actions its handler lists (nothing excluded)."""
    result: dict[str, dict[str, set[str]]] = {}
    for type_name in sorted(set(types)):
        permissions = handler_permissions(type_name)
        result[type_name] = {op: set(permissions[op]) for op in STACK_OPERATIONS
                             if permissions.get(op)}
    return result


@functools.lru_cache(maxsize=1)
def _catalogue() -> dict:
    spec = importlib.util.find_spec("cfnlint")  # locates, does not import cfn-lint
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("cfn-lint is not installed")
    root = Path(list(spec.submodule_search_locations)[0])
    return json.loads((root / "data" / "AdditionalSpecs" / "Policies.json").read_text())


def is_iam_action(action: str) -> bool:
    prefix, _, name = action.partition(":")
    service = _catalogue().get(prefix.lower())
    return bool(service) and name.lower() in service["Actions"]


def action_resource_types(action: str) -> frozenset[str]:
    """The resource types (IAM reference names, e.g. "role", "bucket") an action can be
    scoped to; empty when it supports no resource-level permission (needs "*")."""
    prefix, _, name = action.partition(":")
    entry = _catalogue().get(prefix.lower(), {}).get("Actions", {}).get(name.lower(), {})
    return frozenset(entry.get("Resources", ()))


def not_iam_actions(types: Iterable[str]) -> set[str]:
    """Names the schemas of `types` list that the IAM catalogue does not know."""
    return {action for operations in required_actions(types).values()
            for actions in operations.values() for action in actions
            if not is_iam_action(action)}


def is_excluded(action: str, excluded: Mapping[str, str] = EXCLUDED) -> bool:
    """Deliberately not granted: in EXCLUDED, or not an IAM action at all."""
    return not is_iam_action(action) or any(_matches(p, action) for p in excluded)


def granted_actions(types: Iterable[str], excluded: Mapping[str, str] = EXCLUDED) -> set[str]:
    """What a role must allow for `types`: every handler action but the excluded ones."""
    return {action for operations in required_actions(types).values()
            for actions in operations.values() for action in actions
            if not is_excluded(action, excluded)}


# --- evaluation ----------------------------------------------------------------------------


def _matches(pattern: str, action: str) -> bool:
    # IAM action matching: case-insensitive, `*` any run of characters, `?` one character.
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def statements(document: Mapping) -> list[Mapping]:
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, Mapping)]


def allows(documents: Iterable[Mapping], action: str) -> bool:
    """True if some Allow statement names the action (wildcards honoured) and no
    unconditional Deny on every resource takes it away. Resource scoping and conditions
    of Allow statements are not evaluated: this checks the action lists."""
    documents = list(documents)
    allowed = any(
        s.get("Effect") == "Allow" and any(_matches(p, action) for p in _as_list(s.get("Action")))
        for d in documents for s in statements(d))
    denied = any(
        s.get("Effect") == "Deny" and "Condition" not in s and "*" in _as_list(s.get("Resource"))
        and any(_matches(p, action) for p in _as_list(s.get("Action")))
        for d in documents for s in statements(d))
    return allowed and not denied


@dataclass(frozen=True)
class Coverage:
    covered: int  # type-operations every required action of which is allowed
    total: int
    gaps: tuple[tuple[str, str, str], ...]  # (type, operation, action)

    def __str__(self) -> str:
        return f"{self.covered}/{self.total}"


def coverage(documents: Iterable[Mapping], types: Iterable[str],
             excluded: Mapping[str, str] = EXCLUDED,
             required: Mapping[str, Mapping[str, set[str]]] | None = None) -> Coverage:
    documents = list(documents)
    required = required_actions(types) if required is None else required
    gaps = []
    total = covered = 0
    for type_name in sorted(required):
        for op in STACK_OPERATIONS:
            actions = required[type_name].get(op)
            if not actions:
                continue
            total += 1
            missing = sorted(a for a in actions
                             if not is_excluded(a, excluded) and not allows(documents, a))
            gaps += [(type_name, op, action) for action in missing]
            covered += not missing
    return Coverage(covered, total, tuple(gaps))


def uncovered(documents: Iterable[Mapping], types: Iterable[str],
              excluded: Mapping[str, str] = EXCLUDED) -> list[tuple[str, str, str]]:
    """(type, operation, action) for every required, not excluded action no Allow grants."""
    return list(coverage(documents, types, excluded).gaps)


# --- size as IAM counts it -----------------------------------------------------------------

# Longest values the placeholders can take, so a measured size is an upper bound:
# aws-us-gov is the longest partition name, a region name is at most 14 characters today
# (ap-southeast-4); 20 leaves room for new ones.
_PSEUDO = {
    "AWS::Partition": "aws-us-gov",
    "AWS::Region": "x" * 20,
    "AWS::AccountId": "1" * 12,
    "AWS::URLSuffix": "amazonaws.com.cn",
}
# An unresolved Ref/GetAtt/ImportValue: the longest IAM ARN a role or policy can have
# (name up to 64/128 characters) is below this.
_UNKNOWN = "u" * 128
_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


def resolve(node, values: Mapping[str, str] | None = None):
    """A template fragment with intrinsic functions replaced by the longest plausible
    strings (values: Ref/GetAtt names -> known strings)."""
    known = {**_PSEUDO, **(values or {})}
    if isinstance(node, list):
        return [resolve(item, known) for item in node]
    if not isinstance(node, Mapping):
        return node
    if len(node) == 1:
        (key, value), = node.items()
        if key == "Ref":
            return known.get(value, _UNKNOWN)
        if key == "Fn::GetAtt":
            name = ".".join(value) if isinstance(value, list) else value
            return known.get(name, _UNKNOWN)
        if key == "Fn::ImportValue":
            return _UNKNOWN
        if key == "Fn::Sub":
            text, local = (value, {}) if isinstance(value, str) else (value[0], value[1])
            local = {k: str(resolve(v, known)) for k, v in local.items()}
            return _VARIABLE.sub(lambda m: local.get(m[1], known.get(m[1], _UNKNOWN)), text)
        if key == "Fn::Join":
            separator, items = value
            return separator.join(str(resolve(i, known)) for i in _as_list(resolve(items, known)))
        if key == "Fn::If":
            # Either branch may be taken: the longer one counts.
            branches = [resolve(b, known) for b in value[1:]]
            return max(branches, key=lambda b: len(json.dumps(b)))
    return {k: resolve(v, known) for k, v in node.items()}


def policy_size(document: Mapping, values: Mapping[str, str] | None = None) -> int:
    """Characters of the policy as IAM counts them: JSON without whitespace
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html)."""
    return len(json.dumps(resolve(document, values), separators=(",", ":")))
