"""Login throttling rules: growing delays per (username, client IP) and per client IP.

A hard lock per username let anyone lock anyone out. Instead, failures are counted per
(username, IP) — the owner logging in from elsewhere is unaffected — and per IP across usernames
(credential stuffing). Past a threshold each further failure blocks that key for a delay that
doubles, capped; a key's count starts over once its window has passed without a failure. Known and
unknown usernames are counted the same way, so the answers (and `Retry-After`) never tell which
names exist.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

FIRST_DELAY = timedelta(seconds=15)


@dataclass(frozen=True)
class Counter:
    failures: int
    window_started_at: datetime
    blocked_until: datetime | None = None


@dataclass(frozen=True)
class Policy:
    threshold: int  # failures allowed in a window before delays start
    window: timedelta  # also the longest delay
    first_delay: timedelta = FIRST_DELAY


def user_ip_key(username: str, ip: str | None) -> str:
    # Hashed: a key has a bounded length whatever the input, and the table holds no raw usernames.
    return "u:" + hashlib.sha256(f"{username}\n{ip or '-'}".encode()).hexdigest()


def username_hash(username: str) -> str:
    # Stored on a user's (username, IP) rows so an admin can clear them; still no raw username.
    return hashlib.sha256(username.encode()).hexdigest()


def ip_key(ip: str | None) -> str:
    return "ip:" + hashlib.sha256((ip or "-").encode()).hexdigest()


def seconds_blocked(counter: Counter | None, now: datetime) -> int:
    """Whole seconds until the key may try again (0: not blocked). Rounded up: never early."""
    if counter is None or counter.blocked_until is None or counter.blocked_until <= now:
        return 0
    return math.ceil((counter.blocked_until - now).total_seconds())


def after_failure(counter: Counter | None, now: datetime, policy: Policy) -> Counter:
    """The counter after one more failure: past the threshold, blocked for a doubling delay."""
    if counter is None or now - counter.window_started_at > policy.window:
        counter = Counter(failures=0, window_started_at=now)
    failures = counter.failures + 1
    over = failures - policy.threshold
    if over < 0:
        return replace(counter, failures=failures, blocked_until=None)
    delay = min(policy.window, policy.first_delay * (2 ** min(over, 30)))
    # The window restarts with each block, so a blocked key cannot simply wait the window out.
    return Counter(failures=failures, window_started_at=now, blocked_until=now + delay)
