"""
E9001: Service Connect PortName must name a port mapping of the service's task definition.
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


class ServiceConnectPortName(CloudFormationLintRule):
    id = "E9001"
    shortdesc = "Service Connect PortName matches a port mapping Name"
    description = (
        "ServiceConnectConfiguration.Services[].PortName of an AWS::ECS::Service "
        "must equal the Name of a port mapping in its task definition"
    )
    source_url = (
        "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/"
        "API_ServiceConnectService.html"
    )
    tags = ["resources", "ecs", "service connect"]

    def match(self, cfn):
        matches = []
        for service, properties, entry, entry_path in common.service_connect_entries(cfn):
            mappings = common.task_definition_port_mappings(cfn, properties)
            if mappings is None:
                continue
            for port_name, path in common.alternatives(
                entry.get("PortName"), entry_path + ["PortName"]
            ):
                if port_name is None:
                    continue
                if common.mapping_for_port_name(mappings, port_name) is not None:
                    continue
                # An intrinsic on either side may still resolve to a match.
                if not common.port_names_comparable(mappings, port_name):
                    continue
                names = sorted(
                    str(m["Name"]) for m in mappings if isinstance(m.get("Name"), str)
                )
                matches.append(
                    RuleMatch(
                        path,
                        f"Service {service}: Service Connect PortName {port_name!r} is "
                        f"not the Name of any port mapping in its task definition "
                        f"(names: {', '.join(names) or 'none'})",
                    )
                )
        return matches
