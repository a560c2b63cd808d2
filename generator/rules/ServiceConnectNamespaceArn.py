"""
E9004: Service Connect namespaces are referenced by ARN, never by name or Id.
"""

import importlib.util
import os

from cfnlint.rules import CloudFormationLintRule, RuleMatch

# Loaded by path: cfn-lint imports rule files outside any package (see _common).
_spec = importlib.util.spec_from_file_location(
    "_service_connect_rules_common", os.path.join(os.path.dirname(__file__), "_common.py")
)
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)

# (resource type, property holding the namespace)
_NAMESPACE_PROPERTIES = (
    ("AWS::ECS::Service", "ServiceConnectConfiguration"),
    ("AWS::ECS::Cluster", "ServiceConnectDefaults"),
)


def _is_namespace_type(resource_type):
    return (
        isinstance(resource_type, str)
        and resource_type.startswith("AWS::ServiceDiscovery::")
        and resource_type.endswith("Namespace")
    )


def _literal_prefix(value):
    """Leading literal text of a Fn::Sub/Fn::Join; None if unknown."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    if "Fn::Sub" in value:
        template = value["Fn::Sub"]
        if isinstance(template, list) and template:
            template = template[0]
        if isinstance(template, str):
            return template.split("${", 1)[0]
    if "Fn::Join" in value:
        args = value["Fn::Join"]
        if isinstance(args, list) and len(args) == 2 and isinstance(args[1], list):
            parts = args[1]
            if parts and isinstance(parts[0], str):
                return parts[0]
    return None


class ServiceConnectNamespaceArn(CloudFormationLintRule):
    id = "E9004"
    shortdesc = "Service Connect namespace given as an ARN"
    description = (
        "ServiceConnectConfiguration.Namespace (AWS::ECS::Service) and "
        "ServiceConnectDefaults.Namespace (AWS::ECS::Cluster) must be a namespace ARN"
    )
    source_url = (
        "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/"
        "API_ServiceConnectConfiguration.html"
    )
    tags = ["resources", "ecs", "service connect", "cloudmap"]

    def _problem(self, cfn, value):
        """Why ``value`` is not a namespace ARN, or None if it is (or may be)."""
        target = common.referenced_resource(cfn, value)
        if target is not None:
            name, attribute = target
            if not _is_namespace_type(cfn.get_resources()[name].get("Type")):
                return None
            if attribute is None:
                return (
                    f"Ref {name} returns the namespace Id, not its ARN; "
                    f"use !GetAtt {name}.Arn"
                )
            if attribute != "Arn":
                return (
                    f"!GetAtt {name}.{attribute} is not the namespace ARN; "
                    f"use !GetAtt {name}.Arn"
                )
            return None
        if isinstance(value, str):
            if value.startswith("arn:"):
                return None
            return f"{value!r} is a namespace name, not an ARN (arn:...)"
        prefix = _literal_prefix(value)
        # A prefix still shorter than "arn:" (e.g. "" before "${Arn}") may
        # yet become an ARN; only a diverging literal start proves it is not.
        if prefix is None or prefix.startswith("arn:") or "arn:".startswith(prefix):
            return None
        return f"a value starting {prefix!r} is a namespace name, not an ARN (arn:...)"

    def match(self, cfn):
        matches = []
        for resource_type, key in _NAMESPACE_PROPERTIES:
            for _, properties, path in common.resources_of_type(cfn, resource_type):
                for config, config_path in common.alternatives(
                    properties.get(key), path + [key]
                ):
                    if not isinstance(config, dict) or "Namespace" not in config:
                        continue
                    for value, value_path in common.alternatives(
                        config["Namespace"], config_path + ["Namespace"]
                    ):
                        problem = self._problem(cfn, value)
                        if problem:
                            matches.append(
                                RuleMatch(value_path, f"{key}.Namespace: {problem}")
                            )
        return matches
