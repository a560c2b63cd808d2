"""`python -m tests.ops.moto_launcher ARGS`: moto's server (ARGS as `moto.server` takes
them), with the one gap these tests cannot work around from the client side patched.

moto (5.x) leaves a stack's Description as it was when a change set executes: a stack made
by a CREATE change set describes as having none. CloudFormation states each stack's
template Description in DescribeStacks
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Stack.html), and the
deployer reads the template's fingerprint there (generator.fingerprint). The patch sets it
from the executed change set's template, nothing else.
`tests/ops/test_ops_moto_gaps.py` fails once moto does this itself, so the patch goes then.
"""
from __future__ import annotations

import sys


def patch_moto() -> None:
    from moto.cloudformation.models import CloudFormationBackend

    execute = CloudFormationBackend.execute_change_set
    if getattr(execute, "patched_description", False):
        return

    def execute_change_set(self, change_set_name, stack_name=None):
        execute(self, change_set_name, stack_name)
        change_set = self.change_sets.get(change_set_name) or next(
            (c for c in self.change_sets.values() if c.change_set_name == change_set_name))
        self.stacks[change_set.stack_id].description = change_set.template_dict.get(
            "Description")

    execute_change_set.patched_description = True
    CloudFormationBackend.execute_change_set = execute_change_set


def main() -> None:
    patch_moto()
    from moto.server import main as moto_main

    sys.exit(moto_main(sys.argv[1:]))


if __name__ == "__main__":
    main()
