"""The adaptive refresher: interval switch, breaker and fallback through the scheduler's entry points,
the lease, and a single refresher when two real processes share one SQLite database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import func, select

from cnop_app import scheduler
from cnop_app.config import reset_settings
from cnop_app.db import read_session
from cnop_app.models import Asset, utcnow
from cnop_app.observability.metrics import REGISTRY
from cnop_app.services import activity, leases, market, portfolio
from cnop_app.services.market import RefreshResult
from tests.support.coingecko_server import FakeCoinGecko, Reply, fake_coingecko
from tests.support.helpers import RedisServer
from tests.support.trading_fixtures import make_user

__all__ = ["fake_coingecko"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_activity() -> Iterator[None]:
    activity.reset()
    yield
    activity.reset()


def refresh_past_backoff() -> RefreshResult:
    """run_refresh_once, waiting out the (sub-second in tests) back-off delay."""
    for _ in range(100):
        result = scheduler.run_refresh_once()
        if result.outcome != "backoff":
            return result
        time.sleep(0.05)
    raise AssertionError("still backing off")


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_idle_rate_then_active_rate_after_requests(
    cnop_env: Path, monkeypatch: pytest.MonkeyPatch, clean_activity: None
) -> None:
    monkeypatch.setenv("CNOP_MARKET_SOURCE", "simulated")
    monkeypatch.setenv("CNOP_REFRESH_IDLE_SECONDS", "4")
    monkeypatch.setenv("CNOP_REFRESH_ACTIVE_SECONDS", "1")
    reset_settings()
    refreshes: list[float] = []

    def on_refresh() -> None:
        refreshes.append(time.monotonic())

    scheduler.add_post_refresh_callback(on_refresh)

    async def scenario() -> tuple[int, float, float]:
        async with scheduler.scheduler_lifespan():
            await asyncio.sleep(3.5)
            idle_count = len(refreshes)
            idle_interval = metric("cnop_market_refresh_interval_seconds")
            activity.record_request("GET", "/api/v1/inventory/assets", 200, 10_000)  # a visitor
            visit = time.monotonic()
            await asyncio.sleep(3.6)
            return idle_count, idle_interval, visit

    try:
        idle_count, idle_interval, visit = asyncio.run(scenario())
    finally:
        scheduler.remove_post_refresh_callback(on_refresh)
    # Idle: the start-up refresh only (the next is due 4 s later).
    assert idle_count == 1 and idle_interval == 4
    # Active: refreshed within seconds of the visit, then every second.
    after = [t for t in refreshes if t > visit]
    assert len(after) >= 3
    assert after[0] - visit < 2.5
    assert metric("cnop_market_refresh_interval_seconds") == 1


def test_breaker_transitions_and_fallback(fake_coingecko: FakeCoinGecko, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_BREAKER_FAILURES", "2")
    monkeypatch.setenv("CNOP_BREAKER_RESET_SECONDS", "1")
    reset_settings()
    assert scheduler.run_refresh_once().outcome == "ok"
    good = market.latest_prices()
    fake_coingecko.default = Reply(status=500, body=b"upstream down")
    first = refresh_past_backoff()
    assert first.outcome == "failed" and market.market_status()["breaker"]["state"] == "closed"
    second = refresh_past_backoff()
    assert second.outcome == "failed"
    status = market.market_status()
    assert status["breaker"]["state"] == "open" and status["stale"] and status["consecutive_failures"] == 2
    hits = fake_coingecko.hits
    opened = metric("cnop_market_refresh_total", outcome="breaker_open")
    blocked = scheduler.run_refresh_once()
    assert blocked.outcome == "breaker_open" and blocked.retry_at is not None
    assert fake_coingecko.hits == hits  # open: no call at all
    assert metric("cnop_market_refresh_total", outcome="breaker_open") == opened + 1
    assert metric("cnop_market_breaker_state") == 2
    assert market.latest_prices() == good  # last good prices keep serving
    time.sleep(1.05)
    assert market.market_status()["breaker"]["state"] == "half_open"
    fake_coingecko.default = Reply()
    recovered = scheduler.run_refresh_once()  # the half-open trial call
    assert recovered.outcome == "ok" and fake_coingecko.hits == hits + 1
    status = market.market_status()
    assert status["breaker"]["state"] == "closed" and not status["stale"] and status["consecutive_failures"] == 0


def test_first_start_offline_seeds_from_snapshot(fake_coingecko: FakeCoinGecko) -> None:
    fake_coingecko.default = Reply(status=503, headers={"Retry-After": "1"}, body=b"")
    calls: list[str] = []

    def broken() -> None:
        calls.append("broken")
        raise RuntimeError("callback bug")

    def fine() -> None:
        calls.append("fine")

    scheduler.add_post_refresh_callback(broken)
    scheduler.add_post_refresh_callback(fine)
    try:
        result = scheduler.run_refresh_once()
        assert result.outcome == "failed" and calls == []  # nothing stored from the feed: no callbacks
        with read_session() as session:
            assert session.exec(select(func.count()).select_from(Asset)).one() >= 50
            btc = session.get(Asset, "BTC")
        assert btc is not None and btc.is_active and btc.source == "snapshot"
        assert market.market_status()["stale"] is True
        time.sleep(1.05)  # Retry-After
        fake_coingecko.default = Reply()
        assert scheduler.run_refresh_once().outcome == "ok"
        assert calls == ["broken", "fine"]  # one failing callback does not stop the others
    finally:
        scheduler.remove_post_refresh_callback(broken)
        scheduler.remove_post_refresh_callback(fine)


def test_the_push_does_not_wait_for_housekeeping(cnop_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Filled limit orders (and the portfolio snapshots) come before the browsers get the new prices;
    housekeeping starts only after this process's push, so a slow one cannot delay it."""
    monkeypatch.setenv("CNOP_MARKET_SOURCE", "simulated")
    reset_settings()
    events: list[str] = []

    def before() -> None:
        events.append("before")

    def housekeeping() -> None:
        events.append("housekeeping")

    async def push() -> None:
        events.append("push")

    scheduler.add_post_refresh_callback(housekeeping, after_push=True)
    scheduler.add_post_refresh_callback(before)
    scheduler.add_async_post_refresh_callback(push)

    async def refresh_job() -> None:
        refresher = scheduler._PriceScheduler()
        refresher.interval = 0
        await refresher._refresh_job()

    try:
        asyncio.run(refresh_job())
        # The order says it all: the housekeeping had not started when the push went out.
        assert events == ["before", "push", "housekeeping"]
        events.clear()
        # `run_refresh_once` (admin, tests) runs the housekeeping too; the watch of every process pushes.
        assert scheduler.run_refresh_once().outcome == "ok"
        assert events == ["before", "housekeeping"]
    finally:
        scheduler.remove_post_refresh_callback(housekeeping)
        scheduler.remove_post_refresh_callback(before)
        scheduler.remove_async_post_refresh_callback(push)


def test_the_push_shows_the_snapshot_at_the_new_prices(cnop_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The portfolio page's value chart is re-read on each push: the app's follow-ups record the
    snapshot at the new prices before the browsers get them, so the chart ends where the equity is."""
    monkeypatch.setenv("CNOP_MARKET_SOURCE", "simulated")
    reset_settings()
    for registry in ("_sync_callbacks", "_after_push_callbacks", "_async_callbacks"):
        monkeypatch.setattr(scheduler, registry, [])  # only the app's follow-ups, restored afterwards
    user = make_user("carol_001", "100")
    newest: list[datetime] = []

    async def push() -> None:
        newest.append(portfolio.history(user, "24h")[-1].at)

    scheduler.register_followups()
    scheduler.add_async_post_refresh_callback(push)

    async def refresh_job() -> None:
        refresher = scheduler._PriceScheduler()
        refresher.interval = 0
        await refresher._refresh_job()

    started = utcnow()
    portfolio.record_snapshots(started - timedelta(minutes=5))  # the last refresh's
    asyncio.run(refresh_job())
    assert len(newest) == 1 and newest[0] >= started


def test_lease_held_elsewhere_means_no_refresh(fake_coingecko: FakeCoinGecko) -> None:
    assert leases.try_acquire(scheduler.LEASE_NAME, 60, holder="another-pod:1:abc")
    assert scheduler.run_refresh_once().outcome == "busy"
    assert fake_coingecko.hits == 0
    leases.release(scheduler.LEASE_NAME, holder="another-pod:1:abc")
    assert scheduler.run_refresh_once().outcome == "ok" and fake_coingecko.hits == 1
    assert leases.current_holder(scheduler.LEASE_NAME) is None  # released after each refresh


def test_async_callbacks_fire_when_another_process_stores_prices(
    cnop_env: Path, monkeypatch: pytest.MonkeyPatch, clean_activity: None
) -> None:
    monkeypatch.setenv("CNOP_MARKET_SOURCE", "simulated")
    monkeypatch.setenv("CNOP_REFRESH_IDLE_SECONDS", "3600")
    reset_settings()
    market.refresh_prices()  # fresh status: this scheduler will not refresh by itself
    seen: list[int] = []

    async def pushed() -> None:
        seen.append(market.market_version())

    scheduler.add_async_post_refresh_callback(pushed)

    async def scenario() -> int:
        async with scheduler.scheduler_lifespan():
            await asyncio.sleep(1.2)
            assert seen == []
            # "Another worker" stores prices (bypassing this process's scheduler).
            other = await asyncio.to_thread(market.refresh_prices)
            await asyncio.sleep(2.2)
            return other.version

    try:
        version = asyncio.run(scenario())
    finally:
        scheduler.remove_async_post_refresh_callback(pushed)
    assert seen == [version]


def _follow_redis_signal(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    """This process's scheduler on Redis with its watch an hour away: only the Redis signal can make it
    push."""
    monkeypatch.setenv("CNOP_MARKET_SOURCE", "simulated")
    monkeypatch.setenv("CNOP_REFRESH_IDLE_SECONDS", "3600")
    monkeypatch.setenv("CNOP_REDIS_URL", redis_url)
    monkeypatch.setattr(scheduler, "WATCH_SECONDS", 3600)
    reset_settings()
    market.refresh_prices()  # fresh status: this scheduler will not refresh by itself


def _refresh_in_another_process() -> int:
    code = "from cnop_app import scheduler; print(scheduler.run_refresh_once().version)"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


async def _refresh_elsewhere_and_hear(heard: asyncio.Event) -> int:
    """Another process refreshes; wait until this one pushed. Returns the new market version."""
    version = await asyncio.to_thread(_refresh_in_another_process)
    await asyncio.wait_for(heard.wait(), timeout=10)
    return version


def _assert_pushed_once(scenario: Callable[[asyncio.Event], Awaitable[int]]) -> None:
    """Run `scenario` with a push callback; exactly the market version it returns was pushed, once."""
    seen: list[int] = []
    heard = asyncio.Event()

    async def pushed() -> None:
        seen.append(market.market_version())
        heard.set()

    scheduler.add_async_post_refresh_callback(pushed)
    try:
        version = asyncio.run(scenario(heard))
    finally:
        scheduler.remove_async_post_refresh_callback(pushed)
    assert seen == [version]


def test_other_processes_push_at_once_on_the_redis_signal(
    cnop_env: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch, clean_activity: None
) -> None:
    """With Redis, a process that stored prices announces the version and every other process pushes
    on that message (it fails without the signal: the watch is an hour away)."""
    _follow_redis_signal(monkeypatch, redis_url)

    async def scenario(heard: asyncio.Event) -> int:
        async with scheduler.scheduler_lifespan():
            await asyncio.sleep(0.5)  # the listener subscribes
            version = await _refresh_elsewhere_and_hear(heard)
            await asyncio.sleep(0.3)  # no second push for the same version
            return version

    _assert_pushed_once(scenario)


def test_the_redis_signal_resumes_after_redis_restarts(
    cnop_env: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, clean_activity: None
) -> None:
    _follow_redis_signal(monkeypatch, redis_server.url)

    async def scenario(heard: asyncio.Event) -> int:
        async with scheduler.scheduler_lifespan():
            await asyncio.sleep(0.5)
            await asyncio.to_thread(redis_server.stop)
            await asyncio.sleep(1.5)  # the listener loses its connection and retries
            await asyncio.to_thread(redis_server.start)
            await asyncio.sleep(scheduler.SIGNAL_RETRY_SECONDS + 1.5)  # and subscribes again
            return await _refresh_elsewhere_and_hear(heard)

    _assert_pushed_once(scenario)


def test_a_failure_handling_one_signal_does_not_stop_the_listener(
    cnop_env: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch, clean_activity: None
) -> None:
    _follow_redis_signal(monkeypatch, redis_url)
    failures = [RuntimeError("database briefly away")]
    reload = market.reload_prices_if_changed

    def flaky_reload() -> bool:
        if failures:
            raise failures.pop()
        return reload()

    monkeypatch.setattr(scheduler.market, "reload_prices_if_changed", flaky_reload)

    async def scenario(heard: asyncio.Event) -> int:
        async with scheduler.scheduler_lifespan():
            await asyncio.sleep(0.5)
            await asyncio.to_thread(_refresh_in_another_process)  # its handling fails
            await asyncio.sleep(1.0)
            assert not failures and not heard.is_set()
            return await _refresh_elsewhere_and_hear(heard)

    _assert_pushed_once(scenario)


WORKER = """
import asyncio, os, sys, time
from cnop_app import scheduler
from cnop_app.observability.logging import configure_logging
from cnop_app.services import market

configure_logging("INFO", json_logs=True)
scheduler.add_post_refresh_callback(lambda: print(f"REFRESH {os.getpid()} {time.time()}", flush=True))

async def noticed():
    print(f"NOTICED {os.getpid()} {market.market_version()}", flush=True)

scheduler.add_async_post_refresh_callback(noticed)

async def main():
    start_at, run_for = float(sys.argv[1]), float(sys.argv[2])
    await asyncio.sleep(max(0, start_at - time.time()))
    async with scheduler.scheduler_lifespan():
        await asyncio.sleep(run_for)

asyncio.run(main())
"""


def test_two_processes_sharing_a_database_refresh_once_per_interval(
    fake_coingecko: FakeCoinGecko, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNOP_REFRESH_ACTIVE_SECONDS", "1")
    monkeypatch.setenv("CNOP_REFRESH_IDLE_SECONDS", "1")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start_at, run_for = time.time() + 3, 4.0  # both start together, after their imports
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(start_at), str(run_for)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs, errors = [], []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            outputs.append(out)
            errors.append(err)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    refreshes = [line.split() for out in outputs for line in out.splitlines() if line.startswith("REFRESH")]
    logs = [json.loads(line) for err in errors for line in err.splitlines() if line.startswith("{")]
    attempts = [r for r in logs if r["msg"] == "price refresh" and r["outcome"] in ("ok", "failed")]
    failed = [r for r in attempts if r["outcome"] == "failed"]
    noticed = [line.split() for out in outputs for line in out.splitlines() if line.startswith("NOTICED")]
    pids = {str(p.pid) for p in procs}
    # Every refresh is exactly one feed call, and about one refresh per 1 s interval for BOTH processes
    # together (two independent refreshers would make ~2 per interval).
    assert len(attempts) == fake_coingecko.hits, errors
    assert len(refreshes) == len(attempts) - len(failed) and len(failed) <= 1, failed
    assert 3 <= len(attempts) <= run_for + 2
    # Successful refreshes (a failed call may be retried sooner: that is the back-off, by design).
    times = sorted(float(r[2]) for r in refreshes)
    gaps = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
    print("feed call gaps (s):", gaps, "refreshes by pid:", sorted(r[1] for r in refreshes))
    assert min(gaps) > 0.6, (gaps, failed)
    # Each process ran its scheduler and noticed new prices (its own or the other's).
    assert {n[1] for n in noticed} == pids
    assert {r[1] for r in refreshes} <= pids
