"""topology.yaml's `quotas` section: account quotas raised above AWS's defaults."""
from __future__ import annotations

from typing import Any

from generator.topology.fields import Fields
from generator.topology.model import DEFAULT_SECURITY_GROUP_INBOUND_RULES, Quotas

_QUOTA_KEYS = {"security_group_inbound_rules"}
MAX_SECURITY_GROUP_INBOUND_RULES = 1000


class QuotaFields(Fields):
    def quotas(self, value: Any, where: str = "quotas") -> Quotas:
        raw = self.mapping(value if value is not None else {}, where, _QUOTA_KEYS, set())
        rules = self.integer(
            raw.get("security_group_inbound_rules", DEFAULT_SECURITY_GROUP_INBOUND_RULES),
            f"{where}.security_group_inbound_rules", 1, MAX_SECURITY_GROUP_INBOUND_RULES)
        return Quotas(security_group_inbound_rules=rules)
