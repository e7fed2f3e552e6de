"""`scheduler.due_at`: when the next refresh is due, read from the shared market status."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cnop_app.scheduler import due_at

LAST = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "stamp",
    ["2025-01-02T03:04:05+00:00", "2025-01-02T03:04:05Z", "2025-01-02T03:04:05", "2025-01-02T04:04:05+01:00"],
)
def test_due_at_accepts_every_iso_form_of_the_last_attempt(stamp: str) -> None:
    # "Z" (as other tools write it) and naive (taken as UTC) mean the same instant as "+00:00".
    due = due_at({"last_attempt_at": stamp, "last_outcome": "ok"}, 60)
    assert due == LAST + timedelta(seconds=59.75)
    assert due.tzinfo is not None  # comparable with the scheduler's aware "now"


def test_due_at_after_a_failure_uses_a_z_retry_time_but_never_later_than_an_interval() -> None:
    status = {"last_attempt_at": "2025-01-02T03:04:05Z", "last_outcome": "failed"}
    assert due_at({**status, "retry_at": "2025-01-02T03:04:15Z"}, 60) == LAST + timedelta(seconds=10)
    assert due_at({**status, "retry_at": "2025-01-02T05:00:00Z"}, 60) == LAST + timedelta(seconds=59.75)


def test_due_at_without_a_readable_last_attempt_is_now() -> None:
    for status in ({}, {"last_attempt_at": "yesterday"}, {"last_attempt_at": 12}):
        assert due_at(status, 60) == datetime.min.replace(tzinfo=timezone.utc)


def test_due_at_keeps_slack_below_an_interval_for_short_intervals() -> None:
    # Slack is at most a fifth of the interval: a 1 s interval is due 0.8 s after the attempt.
    assert due_at({"last_attempt_at": "2025-01-02T03:04:05Z"}, 1) == LAST + timedelta(milliseconds=800)
