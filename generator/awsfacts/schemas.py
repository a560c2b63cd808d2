"""The resource-provider schemas that ship inside cfn-lint, read without importing cfn-lint.

Each schema is AWS's machine-readable description of a resource type
(https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html):
`handlers.<operation>.permissions` lists the IAM actions CloudFormation calls for that
operation, `createOnlyProperties` the properties whose change replaces the resource.
cfn-lint keeps one file per schema under data/schemas/resources/, indexed by region in
data/schemas/providers/<region>.json; us-east-1 has every type the templates use.
"""
from __future__ import annotations

import functools
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

REGION = "us-east-1"
OPERATIONS = ("create", "read", "update", "delete")


class UnknownResourceType(KeyError):
    """A resource type with no schema in the installed cfn-lint."""


@functools.lru_cache(maxsize=1)
def _schema_root() -> Path:
    spec = importlib.util.find_spec("cfnlint")  # locates, does not import cfn-lint
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("cfn-lint is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "schemas"


@functools.lru_cache(maxsize=1)
def _index() -> dict[str, str]:
    return json.loads((_schema_root() / "providers" / f"{REGION}.json").read_text())


@dataclass(frozen=True)
class ResourceSchema:
    type_name: str
    handler_permissions: dict[str, tuple[str, ...]]  # operation -> IAM actions
    create_only: tuple[str, ...]  # top-level property names
    conditional_create_only: tuple[str, ...]

    def permissions(self, operations=OPERATIONS) -> frozenset[str]:
        return frozenset(a for op in operations for a in self.handler_permissions.get(op, ()))


def _top_level(pointers) -> tuple[str, ...]:
    return tuple(sorted({p.split("/")[2] for p in pointers or () if p.startswith("/properties/")}))


@functools.lru_cache(maxsize=None)
def schema(type_name: str) -> ResourceSchema:
    digest = _index().get(type_name)
    if digest is None:
        raise UnknownResourceType(type_name)
    document = json.loads((_schema_root() / "resources" / f"{digest}.json").read_text())
    handlers = document.get("handlers") or {}
    return ResourceSchema(
        type_name=type_name,
        handler_permissions={
            op: tuple(handlers[op].get("permissions", ())) for op in handlers
        },
        create_only=_top_level(document.get("createOnlyProperties")),
        conditional_create_only=_top_level(document.get("conditionalCreateOnlyProperties")),
    )
