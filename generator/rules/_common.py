"""Helpers shared by the rule files in this directory.

cfn-lint loads rule files by path (``cfnlint.helpers.load_plugins``): every
file matching ``[A-Za-z1-9]*.py`` is executed as a top-level module named
after the file, without a package and without touching ``sys.path``.  A
leading underscore keeps this file out of that scan, and because relative and
``generator.*`` imports are unavailable there, rule files load it through
``load_common`` below, which works the same under ``cfn-lint --append-rules``
and in-process loading.

Nothing here may subclass ``CloudFormationLintRule``: ``create_rules``
instantiates every such class it finds in a rule module's namespace.
"""

from __future__ import annotations

from typing import Any, Iterator


def is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = str(next(iter(value)))
    return key == "Ref" or key.startswith("Fn::")


def normalize(value: Any) -> Any:
    """Plain, comparable form of a template value.

    The decoder hands back str/dict subclasses carrying line numbers, and
    ``Fn::GetAtt`` may be written ``A.B`` or ``[A, B]``; both must compare
    equal for "same intrinsic" checks.
    """
    if isinstance(value, dict):
        if len(value) == 1 and "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            if isinstance(target, str):
                target = target.split(".", 1)
            return {"Fn::GetAtt": [normalize(v) for v in target]}
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def alternatives(value: Any, path: list) -> Iterator[tuple[Any, list]]:
    """Every value ``value`` can take across ``Fn::If`` branches, with paths.

    ``Ref: AWS::NoValue`` branches are dropped since they remove the key.
    """
    if isinstance(value, dict) and len(value) == 1 and "Fn::If" in value:
        args = value["Fn::If"]
        if isinstance(args, list) and len(args) == 3:
            for i in (1, 2):
                yield from alternatives(args[i], path + ["Fn::If", i])
        return
    if isinstance(value, dict) and value.get("Ref") == "AWS::NoValue":
        return
    yield value, path


def items(value: Any, path: list) -> Iterator[tuple[Any, list]]:
    """Elements of a list property (through ``Fn::If``), with their paths."""
    for candidate, candidate_path in alternatives(value, path):
        if isinstance(candidate, list):
            for i, element in enumerate(candidate):
                yield from alternatives(element, candidate_path + [i])


def referenced_resource(cfn, value: Any) -> tuple[str, str | None] | None:
    """``(logical_id, attribute)`` for a ``Ref``/``Fn::GetAtt`` to a resource.

    ``attribute`` is None for a ``Ref``.  Parameters, pseudo parameters,
    imports and anything else return None: they cannot be followed.
    """
    value = normalize(value)
    resources = cfn.get_resources()
    if not isinstance(value, dict) or len(value) != 1:
        return None
    if "Ref" in value and isinstance(value["Ref"], str):
        if value["Ref"] in resources:
            return value["Ref"], None
    elif "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        if (
            len(target) == 2
            and isinstance(target[0], str)
            and isinstance(target[1], str)
            and target[0] in resources
        ):
            return target[0], target[1]
    return None


def resources_of_type(cfn, resource_type: str) -> Iterator[tuple[str, dict, list]]:
    """``(logical_id, properties, properties_path)`` for each resource of a type."""
    for name, resource in cfn.get_resources().items():
        if not isinstance(resource, dict) or resource.get("Type") != resource_type:
            continue
        properties = resource.get("Properties")
        if isinstance(properties, dict):
            yield name, properties, ["Resources", name, "Properties"]


def service_connect_entries(cfn) -> Iterator[tuple[str, dict, dict, list]]:
    """``(service_id, service_properties, entry, entry_path)`` for every
    ``ServiceConnectConfiguration.Services[]`` entry of every ECS service."""
    for name, properties, path in resources_of_type(cfn, "AWS::ECS::Service"):
        for config, config_path in alternatives(
            properties.get("ServiceConnectConfiguration"),
            path + ["ServiceConnectConfiguration"],
        ):
            if not isinstance(config, dict):
                continue
            for entry, entry_path in items(
                config.get("Services"), config_path + ["Services"]
            ):
                if isinstance(entry, dict):
                    yield name, properties, entry, entry_path


def task_definition_port_mappings(cfn, service_properties: dict) -> list[dict] | None:
    """Port mappings of the task definition an ECS service runs.

    None when the task definition is not a resource of this template (a
    parameter, an import, a literal ARN) or its containers/port mappings are
    not plain lists: absence of a port mapping then proves nothing.
    """
    target = referenced_resource(cfn, service_properties.get("TaskDefinition"))
    if target is None or target[1] not in (None, "TaskDefinitionArn"):
        return None
    resource = cfn.get_resources()[target[0]]
    if resource.get("Type") != "AWS::ECS::TaskDefinition":
        return None
    containers = (resource.get("Properties") or {}).get("ContainerDefinitions")
    if not isinstance(containers, list):
        return None
    mappings: list[dict] = []
    for container in containers:
        if not isinstance(container, dict):
            return None
        port_mappings = container.get("PortMappings", [])
        if not isinstance(port_mappings, list):
            return None
        for mapping in port_mappings:
            if not isinstance(mapping, dict):
                return None
            mappings.append(mapping)
    return mappings


def mapping_for_port_name(mappings: list[dict], port_name: Any) -> dict | None:
    """The port mapping whose ``Name`` is ``port_name``.

    Names are compared after ``normalize`` so a ``Ref`` to the same parameter
    on both sides matches; any ``Fn::If`` branch of the mapping name counts.
    """
    wanted = normalize(port_name)
    for mapping in mappings:
        for name, _ in alternatives(mapping.get("Name"), []):
            if normalize(name) == wanted:
                return mapping
    return None


def port_names_comparable(mappings: list[dict], port_name: Any) -> bool:
    """Whether a failed lookup really means "no such port name".

    Only when the wanted name and every mapping name are literal strings;
    an intrinsic on either side could resolve to a match at deploy time.
    """
    if not isinstance(port_name, str):
        return False
    for mapping in mappings:
        for name, _ in alternatives(mapping.get("Name"), []):
            if name is not None and not isinstance(name, str):
                return False
    return True
