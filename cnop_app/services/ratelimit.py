"""Request rate limits by route group (auth, write, read), per user and per client IP.

Built on the `limits` library with its sliding-window-counter strategy, which behaves as a token bucket
of N tokens refilled at N per period: the count is this fixed window's hits plus the previous window's
weighted by how much of it still overlaps the last period, so spent tokens come back gradually and a
burst of up to N passes when the bucket is full. (`limits` has no token bucket as such. Its exact moving
window keeps one entry per request and, in memory, never drops the emptied keys of clients gone quiet;
the counter keeps two numbers per key that expire by themselves.)

Where the buckets live, from the settings:
- Redis when one is configured (CNOP_REDIS_URL, else REFLEX_REDIS_URL): every worker and every
  instance counts in the same buckets, through `limits`' asyncio Redis storage (no thread hop).
- Otherwise this process's memory (`limits`' synchronous memory storage, called inline on the event
  loop: no I/O). That is correct, not a shortcut: without Redis Reflex runs one worker, production
  refuses SQLite with several, and `limits` has no SQL storage. Several instances without Redis (not a
  supported deployment) would each count on their own.

A Redis failure lets requests through (logged at most once a minute): the limits protect capacity, and
the login throttle in the database still guards credentials.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from decimal import Decimal

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter as SharedSlidingWindow
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from limits.util import WindowStats

from cnop_app.config import Settings
from cnop_app.domain.timeutil import NS_PER_SECOND
from cnop_app.observability.logging import get_logger
from cnop_app.observability.metrics import RATE_LIMITED

REDIS_KEY_PREFIX = "cnop-ratelimit"
REDIS_TIMEOUT_S = 0.5  # a slow Redis must not stall the API: past this the request goes through
_WARN_EVERY_S = 60.0
_log = get_logger("ratelimit")


@dataclass(frozen=True)
class Policy:
    """The limits of one route group: per authenticated user and per client IP."""

    user: RateLimitItem
    ip: RateLimitItem


@dataclass(frozen=True)
class Decision:
    """The outcome of one request against the tightest of its buckets (what the headers report)."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until a token comes back; also Retry-After when refused


def policies_from(settings: Settings) -> dict[str, Policy]:
    rates = {
        "auth": (settings.rate_limit_auth, settings.rate_limit_auth_ip),
        "write": (settings.rate_limit_write, settings.rate_limit_write_ip),
        "read": (settings.rate_limit_read, settings.rate_limit_read_ip),
    }
    return {group: Policy(parse(user), parse(ip)) for group, (user, ip) in rates.items()}


def storage_uri(redis_url: str | None) -> str | None:
    """`limits`' asyncio URI for a Reflex-style Redis URL (redis://, rediss://, unix://), or None."""
    if not redis_url:
        return None
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    if redis_url.startswith(("redis://", "rediss://")):
        return "async+" + redis_url
    raise ValueError("the Redis URL must start with redis://, rediss:// or unix://")


class RateLimiter:
    """Hit the buckets of a request; `None` from `from_settings` when rate limiting is off."""

    def __init__(self, policies: dict[str, Policy], redis_url: str | None = None) -> None:
        self.policies = policies
        self._uri = storage_uri(redis_url)
        self._local: SlidingWindowCounterRateLimiter | None = None
        # The asyncio Redis client belongs to the event loop that made it.
        self._shared: tuple[asyncio.AbstractEventLoop, SharedSlidingWindow] | None = None
        self._warned_at = -math.inf

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter | None:
        if not settings.rate_limit_enabled:
            return None
        return cls(policies_from(settings), settings.shared_redis_url)

    @property
    def shared(self) -> bool:
        """True when the buckets are in Redis (shared by every worker and instance)."""
        return self._uri is not None

    async def hit(self, group: str, *, user: str | None, ip: str | None) -> Decision | None:
        """Spend one token from the user's and the IP's bucket of `group`; None if the store failed."""
        policy = self.policies[group]
        buckets = [(policy.ip, (group, "ip", ip or "unknown"))]
        if user:
            buckets.append((policy.user, (group, "user", user)))
        if self._uri is None:
            results = [self._local_hit(item, key) for item, key in buckets]
        else:
            try:
                async with asyncio.timeout(REDIS_TIMEOUT_S):
                    results = await asyncio.gather(*(self._shared_hit(item, key) for item, key in buckets))
            except (StorageError, TimeoutError) as exc:
                self._warn(exc)
                return None
        decision = _decide(results, time.time_ns())
        if not decision.allowed:
            RATE_LIMITED.labels(group).inc()
        return decision

    def _local_hit(self, item: RateLimitItem, key: tuple[str, ...]) -> _Hit:
        if self._local is None:
            self._local = SlidingWindowCounterRateLimiter(MemoryStorage())
        return _Hit(item, self._local.hit(item, *key), self._local.get_window_stats(item, *key))

    async def _shared_hit(self, item: RateLimitItem, key: tuple[str, ...]) -> _Hit:
        strategy = self._shared_strategy()
        allowed = await strategy.hit(item, *key)
        return _Hit(item, allowed, await strategy.get_window_stats(item, *key))

    def _shared_strategy(self) -> SharedSlidingWindow:
        loop = asyncio.get_running_loop()
        if self._shared is None or self._shared[0] is not loop:
            assert self._uri is not None
            storage = RedisStorage(
                self._uri,
                wrap_exceptions=True,
                implementation="redispy",
                key_prefix=REDIS_KEY_PREFIX,
                # Bounded by the one timeout around the whole check (cheaper than one per socket read).
                socket_connect_timeout=REDIS_TIMEOUT_S,
            )
            self._shared = (loop, SharedSlidingWindow(storage))
        return self._shared[1]

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            _log.warning("rate-limit store unavailable, requests pass unlimited", extra={"error": repr(exc)})


@dataclass(frozen=True)
class _Hit:
    item: RateLimitItem
    allowed: bool
    stats: WindowStats  # (when the next token comes back, tokens left)


def _decide(hits: list[_Hit], now_ns: int) -> Decision:
    # A refused bucket decides; otherwise the one with the fewest tokens left is what the client sees.
    refused = [hit for hit in hits if not hit.allowed]
    if refused:
        hit = max(refused, key=lambda h: h.stats.reset_time)
    else:
        hit = min(hits, key=lambda h: (h.stats.remaining, -h.stats.reset_time))
    # `limits` gives the reset as unix seconds (a float); Decimal(float) is that value exactly.
    reset = max(1, math.ceil(Decimal(hit.stats.reset_time) - Decimal(now_ns) / NS_PER_SECOND))
    return Decision(allowed=not refused, limit=hit.item.amount, remaining=hit.stats.remaining, reset_seconds=reset)
