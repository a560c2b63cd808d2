"""A template's fingerprint, written into its own Description, so the deployer can tell
from DescribeStacks alone whether a stack already runs this exact template.

DescribeStacks returns each stack's template Description
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Stack.html), and
one paged DescribeStacks reads every stack of the app: no GetTemplate per stack (901 calls
for 300 services) and no stack tag, which CloudFormation would propagate to every
taggable resource, re-tagging them (a task definition re-registering) whenever it changed.

The fingerprint is sha256 of the body with its own fingerprint blanked, so it covers every
byte but itself. A template edited by hand keeps a fingerprint that no longer matches its
body, and the deployer then never takes a stack made from it for unchanged.
"""
from __future__ import annotations

import hashlib
import re

_DIGEST_CHARS = 32
# One word, so a YAML writer that folds a long Description cannot split it.
TOKEN = re.compile(r"fingerprint-([0-9a-f]{%d})" % _DIGEST_CHARS)
PLACEHOLDER = "fingerprint-" + "0" * _DIGEST_CHARS


def with_placeholder(description: str) -> str:
    """The Description to render; `stamp` then fills in the digest."""
    return f"{description} ({PLACEHOLDER})"


def stamp(body: str) -> str:
    """The body with its placeholder replaced by its fingerprint."""
    if PLACEHOLDER not in body:
        raise ValueError("the template has no fingerprint placeholder in its Description")
    return body.replace(PLACEHOLDER, f"fingerprint-{_digest(body)}")


def of_body(body: str) -> str | None:
    """The fingerprint a body would have, or None for a body without one."""
    if not TOKEN.search(body):
        return None
    return _digest(TOKEN.sub(PLACEHOLDER, body))


def of_description(description: str | None) -> str | None:
    """The fingerprint a deployed stack's Description states, or None."""
    found = TOKEN.search(description or "")
    return found.group(1) if found else None


def _digest(blanked: str) -> str:
    return hashlib.sha256(blanked.encode("utf-8")).hexdigest()[:_DIGEST_CHARS]
