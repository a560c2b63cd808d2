"""The events of one stack operation, read once each, and the first failure among them.

DescribeStackEvents pages newest first
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackEvents.html):
reading stops at the newest event already seen.
"""
from __future__ import annotations

CANCELLED_REASONS = ("Resource creation cancelled", "Resource update cancelled")


class EventStream:
    """The events of one stack operation, oldest first, each read once.

    DescribeStackEvents pages newest first; reading stops at the newest event already seen.
    """

    def __init__(self, cfn, stack_id: str):
        self.cfn = cfn
        self.stack_id = stack_id
        self.last_seen: str | None = None
        self.seen: list[dict] = []

    def skip_existing(self) -> None:
        page = self.cfn.describe_stack_events(StackName=self.stack_id)["StackEvents"]
        self.last_seen = page[0]["EventId"] if page else None

    def read_new(self) -> list[dict]:
        fresh: list[dict] = []
        token = None
        while True:
            arguments = {"StackName": self.stack_id}
            if token:
                arguments["NextToken"] = token
            response = self.cfn.describe_stack_events(**arguments)
            for event in response["StackEvents"]:
                if event["EventId"] == self.last_seen:
                    return self._remember(fresh)
                fresh.append(event)
            token = response.get("NextToken")
            if not token:
                return self._remember(fresh)

    def _remember(self, fresh: list[dict]) -> list[dict]:
        if fresh:
            self.last_seen = fresh[0]["EventId"]
        oldest_first = list(reversed(fresh))
        self.seen.extend(oldest_first)
        return oldest_first

    def first_failure(self) -> str | None:
        """'<LogicalId>: <reason>' of the earliest failure, cancellations skipped.

        A resource's own failure is preferred over the stack-level event it causes.
        """
        failures = [
            event for event in self.seen
            if event.get("ResourceStatus", "").endswith("_FAILED")
            and not _reason(event).startswith(CANCELLED_REASONS)
        ]
        resources = [e for e in failures if e.get("LogicalResourceId") != e.get("StackName")]
        for event in resources or failures:
            return f"{event['LogicalResourceId']}: {_reason(event) or event['ResourceStatus']}"
        return None


def _reason(event: dict) -> str:
    return " ".join(str(event.get("ResourceStatusReason", "")).split())
