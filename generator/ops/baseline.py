"""`check-upgrade --no-baseline`: the Build found no baseline under the template bucket's
deployed/ (the templates the last successful Deploy left). That is right before the first
deploy, and wrong after it: the upgrade check would be skipped without a word. The
cluster stack tells the two apart: every network and service stack imports its exports,
and CloudFormation refuses to delete a stack whose export is imported
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-exports.html),
so no app stack exists without it.
"""
from __future__ import annotations

from generator.ops.stackflow import current_stack
from generator.topology import Topology

# A stack in these states holds nothing deployed: a create that failed and rolled back, or
# a change set created but never executed (CloudFormation stack status codes,
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html).
NOTHING_DEPLOYED = frozenset({"ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"})


def missing_baseline(cfn, topology: Topology, where: str) -> tuple[str, bool]:
    """(the line to print, whether the Build may go on)."""
    name = topology.cluster_stack_name
    stack = current_stack(cfn, name)
    if stack is None or stack["StackStatus"] in NOTHING_DEPLOYED:
        return "check-upgrade: nothing deployed yet (no stack " + name + "): first deploy", True
    return (f"check-upgrade: stack {name} exists ({stack['StackStatus']}) but no baseline "
            f"is in {where}: restore it from the last deployed commit "
            f"(aws s3 sync templates/ {where} --delete) and run again", False)
