"""Adaptive price refresh on APScheduler's AsyncIOScheduler (on Reflex's event loop).

Two jobs in every worker process:
- `price_refresh`: an interval job at CNOP_REFRESH_ACTIVE_SECONDS while the app is active and
  CNOP_REFRESH_IDLE_SECONDS while idle. It takes the `price_refresher` lease, re-checks in the shared
  market status that a refresh is really due (another process may just have done it), refreshes and
  releases the lease: exactly one refresh per interval for the whole deployment.
- `market_watch` (every second): publishes/reads activity, reschedules `price_refresh` the moment
  active/idle flips, pulls it forward when a refresh is due (an idle app that gets a visitor, a
  back-off retry, a dead leader), and fires the async post-refresh callbacks in every process when
  the shared market version moves (prices stored by whichever process refreshed).
With Redis (several workers or instances), the refresher also announces each new market version on a
Redis channel that every process listens to, so the others push at once instead of at their next
watch tick (up to a second later); the watch stays the fallback when a message is lost.
Blocking database and HTTP work runs in a thread (`asyncio.to_thread`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from redis.exceptions import RedisError

from cnop_app.config import get_settings
from cnop_app.domain.timeutil import parse_iso, utcnow
from cnop_app.observability.logging import get_logger
from cnop_app.services import activity, leases, market, portfolio, trading
from cnop_app.services.auth import throttle
from cnop_app.services.market import RefreshResult, logos

_log = get_logger("scheduler")
T = TypeVar("T")

LEASE_NAME = "price_refresher"
# Longer than one refresh (HTTP timeout 10 s + storing); the lease is released right after.
LEASE_TTL_SECONDS = 60
WATCH_SECONDS = 1
# A refresh counts as due this much before its interval is over, so that the interval timer of the
# process that refreshed last is not skipped for a few milliseconds of jitter. Kept small: each
# process's watcher also pulls a due refresh forward, and a larger slack shortened every interval.
DUE_SLACK = timedelta(milliseconds=250)
REFRESH_JOB = "price_refresh"
WATCH_JOB = "market_watch"
# Redis pub/sub channel carrying each new market version (the message is the version number).
PRICES_CHANNEL = "cnop:market:version"
SIGNAL_RETRY_SECONDS = 1.0

_sync_callbacks: list[Callable[[], None]] = []
_after_push_callbacks: list[Callable[[], None]] = []
_async_callbacks: list[Callable[[], Awaitable[None]]] = []


def add_post_refresh_callback(fn: Callable[[], None], *, after_push: bool = False) -> None:
    """Run `fn()` in a worker thread of the refresher's process after each refresh that stored prices
    (one process). By default before the browsers get the new prices (what they must show: filled
    limit orders); `after_push`: once this process has pushed them, for housekeeping nobody waits for."""
    registry = _after_push_callbacks if after_push else _sync_callbacks
    if fn not in registry:
        registry.append(fn)


def add_async_post_refresh_callback(fn: Callable[[], Awaitable[None]]) -> None:
    """Await `fn()` on the event loop of EVERY worker process after new prices were stored anywhere."""
    if fn not in _async_callbacks:
        _async_callbacks.append(fn)


def remove_post_refresh_callback(fn: Callable[[], None]) -> None:
    for registry in (_sync_callbacks, _after_push_callbacks):
        if fn in registry:
            registry.remove(fn)


def remove_async_post_refresh_callback(fn: Callable[[], Awaitable[None]]) -> None:
    if fn in _async_callbacks:
        _async_callbacks.remove(fn)


def interval_seconds(active: bool) -> int:
    settings = get_settings()
    return settings.refresh_active_seconds if active else settings.refresh_idle_seconds


def due_at(status: dict[str, Any], interval: int) -> datetime:
    """When the next refresh is due, from the shared status (the same answer in every process).

    After a success: one interval after the last attempt started (minus a little slack for timer
    jitter). After a failure: at the back-off / breaker retry time, but never later than an interval.
    """
    last = parse_iso(status.get("last_attempt_at"))
    if last is None:
        return datetime.min.replace(tzinfo=timezone.utc)
    regular = last + timedelta(seconds=interval) - min(DUE_SLACK, timedelta(seconds=interval) / 5)
    retry = parse_iso(status.get("retry_at"))
    if status.get("last_outcome") not in (None, "ok") and retry is not None:
        return min(regular, retry)
    return regular


def register_followups() -> None:
    """What follows each refresh that stored prices, in the refresher's process. Before the push, what
    the browsers show with the new prices: filled limit orders, and a portfolio snapshot per account
    (the portfolio's value chart ends at it). After it: the login throttle's pruning and new logos
    (the feed just answered)."""
    add_post_refresh_callback(trading.match_limit_orders)
    add_post_refresh_callback(portfolio.record_snapshots)
    add_post_refresh_callback(throttle.prune, after_push=True)
    add_post_refresh_callback(logos.refresh_logos, after_push=True)


def run_post_refresh_callbacks(after_push: bool = False) -> None:
    """The callbacks registered for before the push (or, `after_push`, after it); one failing does not
    stop the others."""
    for fn in list(_after_push_callbacks if after_push else _sync_callbacks):
        try:
            fn()
        except Exception:
            _log.exception("post-refresh callback failed", extra={"callback": getattr(fn, "__qualname__", repr(fn))})


async def _run_async_callbacks() -> None:
    callbacks = list(_async_callbacks)
    results = await asyncio.gather(*(fn() for fn in callbacks), return_exceptions=True)
    for fn, outcome in zip(callbacks, results, strict=True):
        if isinstance(outcome, BaseException):
            _log.error(
                "async post-refresh callback failed",
                exc_info=outcome,
                extra={"callback": getattr(fn, "__qualname__", repr(fn))},
            )


_publishers: dict[str, redis.Redis] = {}


def _announce(version: int) -> None:
    """Tell every process of the deployment that prices moved (nothing without Redis). A message that
    is lost only delays the other processes' pushes to their next watch tick."""
    url = get_settings().shared_redis_url
    if url is None:
        return
    try:
        client = _publishers.get(url)
        if client is None:
            client = _publishers[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        client.publish(PRICES_CHANNEL, str(version))
    except RedisError:
        _log.warning("new prices not announced on Redis", exc_info=True)


def _refresh_under_lease(interval: int | None) -> RefreshResult | None:
    """Refresh if this process gets the lease and (unless forced: interval None) a refresh is due."""
    if not leases.try_acquire(LEASE_NAME, LEASE_TTL_SECONDS):
        return None
    try:
        if interval is not None and utcnow() < due_at(market.load_status(), interval):
            return None  # another process refreshed since we looked
        result = market.refresh_prices()
        if result.stored_prices:
            run_post_refresh_callbacks()
            _announce(result.version)
        return result
    finally:
        leases.release(LEASE_NAME)


def run_refresh_once() -> RefreshResult:
    """Refresh now, whatever the schedule (tests, admin "refresh now"). Sync: call it from a thread.

    Still honours the lease (outcome "busy" while another refresh runs) and the breaker/back-off.
    Other processes notice the new market version within about a second.
    """
    result = _refresh_under_lease(None)
    if result is not None and result.stored_prices:
        run_post_refresh_callbacks(after_push=True)  # every process pushes when its watch sees the version
    return result if result is not None else RefreshResult(outcome="busy", source=get_settings().market_source)


class _PriceScheduler:
    def __init__(self) -> None:
        self.scheduler = AsyncIOScheduler(
            timezone=timezone.utc, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
        )
        self.active = False
        self.interval = interval_seconds(False)
        self.seen_version: int | None = None
        self.refreshing = False
        self.inflight: asyncio.Future[Any] | None = None
        self.listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.active = await asyncio.to_thread(activity.sync_shared)
        self.interval = interval_seconds(self.active)
        self.seen_version = await asyncio.to_thread(market.market_version)
        activity.set_refresh_interval(self.interval)
        now = utcnow()
        # First run right away: it refreshes only if the shared status says a refresh is due.
        self.scheduler.add_job(
            self._refresh_job, IntervalTrigger(seconds=self.interval), id=REFRESH_JOB, next_run_time=now
        )
        self.scheduler.add_job(
            self._watch_job, IntervalTrigger(seconds=WATCH_SECONDS), id=WATCH_JOB, misfire_grace_time=WATCH_SECONDS
        )
        self.scheduler.start()
        url = get_settings().shared_redis_url
        if url is not None:
            self.listener = asyncio.create_task(self._listen(url), name="cnop-price-signal")
        _log.info("price scheduler started", extra={"interval_seconds": self.interval, "active": self.active})

    async def stop(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.listener
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down via call_soon
        if self.inflight is not None and not self.inflight.done():
            # Let a refresh in its thread finish its transaction before the app closes the database.
            try:
                await asyncio.wait_for(asyncio.shield(self.inflight), timeout=get_settings().shutdown_grace_seconds)
            except Exception:
                _log.exception("price refresh did not finish cleanly at shutdown")

    async def _refresh_job(self) -> None:
        if self.refreshing:
            return
        self.refreshing = True
        try:
            result = await self._in_thread(_refresh_under_lease, self.interval)
        except Exception:
            # E.g. the database briefly unavailable for the lease: the watcher retries when due.
            _log.exception("price refresh job failed")
            return
        finally:
            self.refreshing = False
        if result is None:
            return
        # A failed refresh is retried by the watcher at the back-off / breaker time (status "retry_at").
        if result.stored_prices:
            await self._prices_moved(result.version, stored_here=True)
            # After this process's push: the browsers' new prices do not wait for the housekeeping.
            await self._in_thread(run_post_refresh_callbacks, True)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker thread, kept in `inflight`: shutdown lets its transaction finish."""
        inflight = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        self.inflight = inflight
        return await asyncio.shield(inflight)

    async def _prices_moved(self, version: int, stored_here: bool = False) -> None:
        """Run the async callbacks once per market version, whichever path saw it first (this process's
        refresh, the Redis signal or the watch): the check and the update of `seen_version` happen
        without an await between them. Prices stored elsewhere are loaded into this process first."""
        if version == self.seen_version:
            return
        self.seen_version = version
        if not stored_here:
            await asyncio.to_thread(market.reload_prices_if_changed)
        await _run_async_callbacks()

    async def _listen(self, url: str) -> None:
        """Follow the Redis signal of new prices; reconnects every second while Redis is away (the watch
        still notices new prices meanwhile), logging the loss once and the return."""
        lost = False
        while True:
            client = aioredis.Redis.from_url(url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(PRICES_CHANNEL)
                    if lost:
                        _log.info("price signal from Redis back")
                        lost = False
                    async for message in pubsub.listen():
                        if message["type"] != "message" or not message["data"].isdigit():
                            continue
                        version = int(message["data"])
                        # An older version arriving late is no news (the watch covers a restored database).
                        if self.seen_version is None or version > self.seen_version:
                            try:
                                await self._prices_moved(version)
                            except Exception:  # e.g. the database briefly away: keep listening
                                _log.exception("handling new prices from the Redis signal failed")
            except (RedisError, OSError) as exc:
                if not lost:
                    _log.warning("price signal from Redis lost; retrying every second", extra={"error": str(exc)})
                    lost = True
            finally:
                await client.aclose()
            await asyncio.sleep(SIGNAL_RETRY_SECONDS)

    def _run_at(self, when: datetime) -> None:
        job = self.scheduler.get_job(REFRESH_JOB)
        if job is None:
            return
        when = max(when, utcnow())
        if job.next_run_time is None or when < job.next_run_time:
            self.scheduler.modify_job(REFRESH_JOB, next_run_time=when)

    def _observe(self) -> tuple[bool, dict[str, Any]]:
        active = activity.sync_shared()
        return active, market.load_status()

    async def _watch_job(self) -> None:
        try:
            active, status = await asyncio.to_thread(self._observe)
        except Exception:
            _log.exception("market watch failed")
            return
        if active != self.active:
            self.active = active
            self.interval = interval_seconds(active)
            activity.set_refresh_interval(self.interval)
            self.scheduler.reschedule_job(REFRESH_JOB, trigger=IntervalTrigger(seconds=self.interval))
            _log.info("refresh interval changed", extra={"active": active, "interval_seconds": self.interval})
        if not self.refreshing and utcnow() >= due_at(status, self.interval):
            self._run_at(utcnow())
        version = int(status.get("version") or 0)
        if self.seen_version is None:
            self.seen_version = version
        else:
            await self._prices_moved(version)


@asynccontextmanager
async def scheduler_lifespan() -> AsyncIterator[None]:
    """Start the price scheduler for the app's lifetime (nothing when CNOP_RUN_SCHEDULER=false)."""
    if not get_settings().run_scheduler:
        yield
        return
    # One INFO line per job run every second would drown the logs.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    runner = _PriceScheduler()
    await runner.start()
    try:
        yield
    finally:
        await runner.stop()
