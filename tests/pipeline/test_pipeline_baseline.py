"""Issue 14, findings 9 and 10: the upgrade check's baseline and overlapping runs.

- 9: a lifecycle rule without a filter applies to every object in the bucket
  (https://docs.aws.amazon.com/AmazonS3/latest/API/API_LifecycleRuleFilter.html); the
  template bucket's 30-day expiry also deleted deployed/, and the Build then printed
  "nothing deployed yet" and passed. (The moto half, first deploy vs missing baseline, is
  tests/ops/test_ops_baseline.py.)
- 10: in SUPERSEDED mode a newer run overtakes an older one between stages, so the newer
  Build's check overlapped the older Deploy; QUEUED runs one execution at a time, in order
  (https://docs.aws.amazon.com/codepipeline/latest/userguide/concepts-how-it-works.html,
  https://docs.aws.amazon.com/codepipeline/latest/userguide/execution-modes.html).
"""
from __future__ import annotations

import yaml

from generator import render
from generator.ops.deploy import upload_template
from generator.stacks import bootstrap

BASELINE_KEY = "deployed/templates/cluster.yaml"


def _rules(topology) -> list[dict]:
    bucket = render.bootstrap_template(topology).to_dict()["Resources"][bootstrap.TEMPLATE_BUCKET]
    return bucket["Properties"]["LifecycleConfiguration"]["Rules"]


def _prefix(rule: dict) -> str:
    """The rule's prefix: top-level Prefix or Filter.Prefix; "" (every object) when none."""
    return rule.get("Prefix", rule.get("Filter", {}).get("Prefix", ""))


def test_no_rule_expires_the_current_baseline(seed_topology):
    """A current object under deployed/ is under no rule with an expiration."""
    rules = [r for r in _rules(seed_topology) if r["Status"] == "Enabled"]
    expiring = [r for r in rules if "ExpirationInDays" in r or "ExpirationDate" in r]
    assert expiring, "uploaded templates still expire"
    for rule in expiring:
        assert not BASELINE_KEY.startswith(_prefix(rule)), rule["Id"]


class _FakeS3:
    class meta:
        endpoint_url = "https://s3.eu-west-1.amazonaws.com"

    def __init__(self):
        self.keys = []

    def put_object(self, Key, **_):
        self.keys.append(Key)


def test_uploaded_templates_still_expire(seed_topology):
    """The uploads of `deploy` (generator.ops.deploy.upload_template) fall under an
    expiring rule, so the bucket does not grow without end."""
    s3 = _FakeS3()
    upload_template(s3, "bucket", "Resources: {}\n")
    expiring = [r for r in _rules(seed_topology) if "ExpirationInDays" in r]
    assert any(s3.keys[0].startswith(_prefix(r)) and _prefix(r) for r in expiring), s3.keys


def test_a_missing_baseline_is_not_a_pass_in_the_buildspec(repo_root):
    """The Build's branch without a baseline runs the check that tells a first deploy from a
    lost baseline; on main it echoed "nothing deployed yet" and went on."""
    build = yaml.safe_load((repo_root / "buildspec.yml").read_text())
    script = next(c for c in build["phases"]["pre_build"]["commands"] if "check-upgrade" in c)
    missing = script.split("else", 1)[1]
    assert "check-upgrade --no-baseline" in missing
    assert "echo" not in missing


def test_runs_are_queued(seed_pipeline):
    pipeline = seed_pipeline["Resources"]["Pipeline"]["Properties"]
    assert pipeline["ExecutionMode"] == "QUEUED"
    # QUEUED needs a V2 pipeline (execution-modes.html).
    assert pipeline["PipelineType"] == "V2"


def test_the_build_may_read_the_cluster_stack(seed_pipeline, seed_topology):
    """--no-baseline calls DescribeStacks on the cluster stack, as the Build role."""
    role = seed_pipeline["Resources"]["BuildRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    found = [s for s in statements if "cloudformation:DescribeStacks" in s["Action"]]
    assert found
    assert any(seed_topology.cluster_stack_name in str(s["Resource"]) for s in found)
