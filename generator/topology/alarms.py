"""topology.yaml's `alarms` section (defaults for every service) and a service's own
`alarms` (its overrides): what the generated CloudWatch alarms watch and when they fire.

    alarms:
      error_rate_percent: 5     # 5xx responses over requests, per minute
      minimum_requests: 20      # a minute with fewer requests never alarms on its errors
      latency_ms: 1000          # TargetResponseTime at latency_percentile, per minute
      latency_percentile: p99
      evaluation_minutes: 3     # that many breaching minutes in a row
      rollback: true            # ECS rolls a deployment back when one of them fires
      bake_minutes: 5           # the deployer watches them this long before the callers

A service overrides any of them under its own `alarms:` (and an environment's service
override too). The defaults are what a team would accept without thinking: a quiet
service does not alarm on one error (minimum_requests), a blip does not page
(evaluation_minutes).
"""
from __future__ import annotations

from typing import Any

from generator.topology.fields import Fields
from generator.topology.model import Alarms

KEYS = {"error_rate_percent", "minimum_requests", "latency_ms", "latency_percentile",
        "evaluation_minutes", "rollback", "bake_minutes"}
# The percentiles an alarm's ExtendedStatistic takes here; CloudWatch accepts pNN and
# pNN.NN (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Statistics-definitions.html).
PERCENTILES = ("p50", "p90", "p95", "p99", "p99.9")
# A metric alarm evaluates at most one day of periods
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html:
# "the evaluation period ... can be no longer than one day"); at one minute per period.
MAX_EVALUATION_MINUTES = 1440
MAX_BAKE_MINUTES = 120


class AlarmFields(Fields):

    def alarms(self, value: Any, where: str, defaults: Alarms) -> Alarms:
        raw = self.mapping(value if value is not None else {}, where, KEYS, set())
        percentile = raw.get("latency_percentile", defaults.latency_percentile)
        if percentile not in PERCENTILES:
            raise self.fail(f"{where}.latency_percentile",
                            f"{percentile!r} is not one of {', '.join(PERCENTILES)}")
        rate = raw.get("error_rate_percent", defaults.error_rate_percent)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 100:
            raise self.fail(f"{where}.error_rate_percent",
                            f"{rate!r} is not a percentage above 0 and at most 100")
        return Alarms(
            error_rate_percent=float(rate),
            minimum_requests=self.integer(raw.get("minimum_requests",
                                                  defaults.minimum_requests),
                                          f"{where}.minimum_requests", 1, 1_000_000),
            latency_ms=self.integer(raw.get("latency_ms", defaults.latency_ms),
                                    f"{where}.latency_ms", 1, 600_000),
            latency_percentile=percentile,
            evaluation_minutes=self.integer(raw.get("evaluation_minutes",
                                                    defaults.evaluation_minutes),
                                            f"{where}.evaluation_minutes", 1,
                                            MAX_EVALUATION_MINUTES),
            rollback=self.boolean(raw.get("rollback", defaults.rollback), f"{where}.rollback"),
            bake_minutes=self.integer(raw.get("bake_minutes", defaults.bake_minutes),
                                      f"{where}.bake_minutes", 0, MAX_BAKE_MINUTES),
        )
