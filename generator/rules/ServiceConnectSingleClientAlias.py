"""
E9003: at most one client alias per Service Connect service entry.
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


class ServiceConnectSingleClientAlias(CloudFormationLintRule):
    id = "E9003"
    shortdesc = "One client alias per Service Connect service"
    description = (
        "A Service Connect service entry may declare at most one ClientAliases "
        "entry (project policy: one discovery name, one alias)"
    )
    source_url = (
        "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/"
        "API_ServiceConnectClientAlias.html"
    )
    tags = ["resources", "ecs", "service connect"]

    def match(self, cfn):
        matches = []
        for service, _, entry, entry_path in common.service_connect_entries(cfn):
            for aliases, path in common.alternatives(
                entry.get("ClientAliases"), entry_path + ["ClientAliases"]
            ):
                if not isinstance(aliases, list) or len(aliases) < 2:
                    continue
                # Each alias past the first is reported on its own line so the
                # fix (delete it) is obvious from the location.
                for index in range(1, len(aliases)):
                    matches.append(
                        RuleMatch(
                            path + [index],
                            f"Service {service}: {len(aliases)} ClientAliases; only one "
                            f"is allowed, further aliases shadow each other",
                        )
                    )
        return matches
