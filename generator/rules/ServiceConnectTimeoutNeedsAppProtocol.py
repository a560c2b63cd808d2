"""
E9002: a Service Connect per-request timeout needs an AppProtocol on the port mapping.
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


class ServiceConnectTimeoutNeedsAppProtocol(CloudFormationLintRule):
    id = "E9002"
    shortdesc = "Service Connect per-request timeout requires AppProtocol"
    description = (
        "A Service Connect service with Timeout.PerRequestTimeoutSeconds must use "
        "a port mapping that declares AppProtocol (http, http2 or grpc)"
    )
    source_url = (
        "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/"
        "API_TimeoutConfiguration.html"
    )
    tags = ["resources", "ecs", "service connect"]

    def match(self, cfn):
        matches = []
        for service, properties, entry, entry_path in common.service_connect_entries(cfn):
            timeout = entry.get("Timeout")
            if not isinstance(timeout, dict) or "PerRequestTimeoutSeconds" not in timeout:
                continue
            mappings = common.task_definition_port_mappings(cfn, properties)
            if mappings is None:
                continue
            # A missing port name is E9001's finding; here only the mapping that
            # would serve the timeout matters.
            mapping = common.mapping_for_port_name(mappings, entry.get("PortName"))
            if mapping is None:
                continue
            if mapping.get("AppProtocol") is not None:
                continue
            matches.append(
                RuleMatch(
                    entry_path + ["Timeout", "PerRequestTimeoutSeconds"],
                    f"Service {service}: PerRequestTimeoutSeconds is set but port "
                    f"mapping {entry.get('PortName')!r} has no AppProtocol; ECS only "
                    f"accepts a per-request timeout for http, http2 or grpc",
                )
            )
        return matches
