"""`logs SERVICE`: a service's log lines in the terminal, from CloudWatch Logs, with no
other tool installed.

The service stack's log group (its `LogGroupName` output) holds two kinds of streams, by
the awslogs stream prefix service.yaml gives each container: `app/...` for the app and
`service-connect/...` for its Service Connect proxy. awslogs names a stream
`prefix-name/container-name/ecs-task-id`
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html), so the
task id is the stream's last part. Lines come from FilterLogEvents, which takes a stream
name prefix and a start time and pages with nextToken
(https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, TextIO

APP_STREAMS = "app/"
PROXY_STREAMS = "service-connect/"
_DURATION = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# CloudWatch Logs keeps events for at most the log group's retention; 10 years is the
# longest retention (LOG_RETENTION_DAYS), so a longer --since cannot find more.
MAX_SINCE_SECONDS = 3653 * 86400


class LogsInputError(Exception):
    """Bad input for `logs`; str() is the one-line message."""


def parse_since(text: str) -> int:
    """"10m" -> 600 seconds: a positive number and one of s, m, h, d."""
    match = _DURATION.match(text.strip())
    if not match:
        raise LogsInputError(f"--since {text!r}: expected a duration such as 30s, 10m, 2h or 1d")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_SINCE_SECONDS:
        raise LogsInputError(f"--since {text!r}: longer than the longest log retention (3653d)")
    return seconds


@dataclass(frozen=True)
class Line:
    timestamp_ms: int
    stream: str
    message: str
    event_id: str

    def render(self) -> str:
        when = datetime.fromtimestamp(self.timestamp_ms / 1000, tz=timezone.utc)
        task = self.stream.rsplit("/", 1)[-1]
        return f"{when:%Y-%m-%d %H:%M:%S}Z {task[:12]:12} {self.message.rstrip()}"


def read(client, group: str, prefix: str, start_ms: int) -> list[Line]:
    """Every event of `group` in streams starting with `prefix` from `start_ms` on,
    oldest first."""
    lines = []
    paginator = client.get_paginator("filter_log_events")
    for page in paginator.paginate(logGroupName=group, logStreamNamePrefix=prefix,
                                   startTime=start_ms):
        for event in page.get("events", []):
            # The prefix again, here: moto's FilterLogEvents ignores it, so the tests
            # would not notice a request without it (a Stubber test checks the request).
            if not event.get("logStreamName", "").startswith(prefix):
                continue
            lines.append(Line(int(event["timestamp"]), event.get("logStreamName", ""),
                              event.get("message", ""), event.get("eventId", "")))
    lines.sort(key=lambda line: (line.timestamp_ms, line.event_id))
    return lines


def tail(client, group: str, prefix: str, since_seconds: int, out: TextIO, *,
         follow: bool = False, poll_seconds: float = 2.0,
         clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
         rounds: int | None = None) -> int:
    """Print the lines since `since_seconds` ago; with `follow`, keep printing new ones
    until interrupted (`rounds` bounds the polls, for tests). Returns the lines printed."""
    start_ms = int((clock() - since_seconds) * 1000)
    seen: set[str] = set()
    printed = 0
    polls = 0
    while True:
        lines = [line for line in read(client, group, prefix, start_ms)
                 if line.event_id not in seen]
        printed += _emit(lines, out)
        seen.update(line.event_id for line in lines)
        if lines:
            # Later polls start at the newest event seen; events of that same millisecond
            # come again and are skipped by id.
            start_ms = max(line.timestamp_ms for line in lines)
        polls += 1
        if not follow or (rounds is not None and polls >= rounds):
            return printed
        sleep(poll_seconds)


def _emit(lines: Iterable[Line], out: TextIO) -> int:
    count = 0
    for line in lines:
        out.write(line.render() + "\n")
        count += 1
    out.flush()
    return count
