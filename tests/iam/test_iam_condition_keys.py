"""Issue 15, item 3: every condition key a generated policy uses is one IAM evaluates for
that action. A key the Service Authorization Reference does not list for an action is
never present in the request, so a String* condition on it never matches (an Allow that
never applies) and a Deny on it never fires: false comfort either way. The reference's
data ships offline with policy_sentry (its IAM definition), so this runs without network.

Global keys (aws:SourceAccount, aws:SecureTransport, aws:PrincipalArn, ...) apply to every
action (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html),
except the tag keys aws:RequestTag/*, aws:ResourceTag/* and aws:TagKeys, which an action
supports only where the reference lists them.
"""
from __future__ import annotations

import re

import pytest

from policy_sentry.querying import actions as policy_sentry_actions

from generator import render
from generator import topology as topology_module

SERVICE_TAG_KEYS = re.compile(r"^aws:(RequestTag/|ResourceTag/|TagKeys$)", re.IGNORECASE)


def _keys_for(action: str) -> set[str] | None:
    """Lower-cased condition keys the reference lists for `action` (every resource type's
    and the action's own); None when the reference does not know the action."""
    service, name = action.split(":", 1)
    data = policy_sentry_actions.get_action_data(service, name)
    entries = data.get(service) if isinstance(data, dict) else None
    if not entries:
        return None
    keys = set()
    for entry in entries:
        keys.update(key.lower() for key in entry.get("condition_keys", []))
    return keys


def key_is_evaluated(action: str, key: str) -> bool:
    """True when IAM evaluates condition `key` for `action` (wildcard actions: every action
    they match must support it)."""
    if key.lower().startswith("aws:") and not SERVICE_TAG_KEYS.match(key):
        return True
    if "*" in action or "?" in action:
        service, pattern = action.split(":", 1)
        regex = re.compile("^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
                           + "$", re.IGNORECASE)
        names = [a.split(":", 1)[1] for a in
                 policy_sentry_actions.get_actions_for_service(service)]
        matching = [f"{service}:{n}" for n in names if regex.match(n)]
        return bool(matching) and all(key_is_evaluated(a, key) for a in matching)
    listed = _keys_for(action)
    if listed is None:
        return False
    wanted = key.lower()
    for candidate in listed:
        # ${TagKey}-style templates in the reference match any concrete key.
        if "${" in candidate:
            prefix = candidate.split("${", 1)[0]
            if wanted.startswith(prefix) and len(wanted) > len(prefix):
                return True
        elif candidate == wanted:
            return True
    return False


def _statements(node, found: list) -> list:
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            found.append(node)
        for value in node.values():
            _statements(value, found)
    elif isinstance(node, list):
        for value in node:
            _statements(value, found)
    return found


def _actions(statement: dict) -> list[str]:
    actions = statement.get("Action", [])
    actions = actions if isinstance(actions, list) else [actions]
    return [a for a in actions if isinstance(a, str)]


def _pairs(documents: dict) -> set[tuple[str, str, str]]:
    pairs = set()
    for name, document in documents.items():
        for statement in _statements(document, []):
            for operator, keys in (statement.get("Condition") or {}).items():
                for key in keys:
                    for action in _actions(statement):
                        pairs.add((name, action, key))
    return pairs


def _documents(topology_text: str) -> dict:
    return render.render_with_documents(topology_module.parse(topology_text, "topology.yaml"))[1]


@pytest.fixture(scope="module")
def every_pair(repo_root) -> set[tuple[str, str, str]]:
    from tests.workloads.workloads_kit import WORKLOADS_TOPOLOGY

    default = (repo_root / "topology.yaml").read_text(encoding="utf-8")
    return _pairs(_documents(default)) | _pairs(_documents(WORKLOADS_TOPOLOGY))


def test_there_are_conditions_to_check(every_pair):
    keys = {key for _, _, key in every_pair}
    assert {"iam:PassedToService", "iam:PermissionsBoundary", "kms:ViaService"} <= keys


def test_every_action_condition_key_pair_is_one_iam_evaluates(every_pair):
    unevaluated = sorted(f"{template}: {action} with {key}"
                         for template, action, key in every_pair
                         if not key_is_evaluated(action, key))
    assert unevaluated == []


@pytest.mark.parametrize("action, key, evaluated", [
    ("kms:Decrypt", "kms:ViaService", True),
    ("iam:PassRole", "iam:PassedToService", True),
    ("iam:CreateRole", "iam:PermissionsBoundary", True),
    ("ec2:AuthorizeSecurityGroupIngress", "aws:ResourceTag/app", True),
    ("s3:GetObject", "aws:SecureTransport", True),  # global
    ("iam:Create*", "iam:PermissionsBoundary", False),  # CreateGroup, CreateUser... lack it
    # Made-up pairs: the check must refuse them.
    ("s3:GetObject", "kms:ViaService", False),
    ("iam:PassRole", "iam:PermissionsBoundary", False),
    ("sts:GetCallerIdentity", "aws:ResourceTag/app", False),
    ("ecs:DescribeServices", "ecs:no-such-key", False),
    ("nosuchservice:DoThing", "nosuchservice:Key", False),
])
def test_the_check_itself(action, key, evaluated):
    assert key_is_evaluated(action, key) is evaluated


def test_a_misplaced_key_deep_inside_a_generated_template_is_found():
    """The walk reaches statements nested in roles' policies and Fn::If branches: a key
    put on the wrong action in a copy of the workloads service template is reported, and
    nothing else is."""
    import copy

    from tests.workloads.workloads_kit import WORKLOADS_TOPOLOGY

    documents = _documents(WORKLOADS_TOPOLOGY)
    template = copy.deepcopy(documents["service.yaml"])
    statement = next(s for s in _statements(template["Resources"]["ExecutionRole"], [])
                     if "kms:Decrypt" in _actions(s) and s.get("Condition"))
    statement["Condition"].setdefault("StringEquals", {})["kms:ViaServices"] = "typo"
    unevaluated = sorted((action, key) for _, action, key in _pairs({"service.yaml": template})
                         if not key_is_evaluated(action, key))
    assert unevaluated == [("kms:Decrypt", "kms:ViaServices")]
