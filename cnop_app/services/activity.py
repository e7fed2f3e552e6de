"""Activity monitor: is anyone using the app? Decides the price refresh rate (active vs idle).

Sliding windows (in memory, per process) of API requests per route template, logged-in users and UI
events (page views, orders), with response times. The app is *active* while the newest activity is
younger than CNOP_IDLE_AFTER_SECONDS. Probes (/health, /metrics) are not activity.

With several worker processes only one runs the refresher, so each process publishes its newest
activity time to the KeyValue table (at most every few seconds) and `is_active()` also honours what
the others published (`sync_shared()`, called by the scheduler's watcher).

This module also owns the market/activity Prometheus metrics.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter as Tally
from collections import deque
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from cnop_app.config import get_settings
from cnop_app.db import read_session, write_session
from cnop_app.domain.timeutil import NS_PER_SECOND, iso, utcnow
from cnop_app.models import KeyValue
from cnop_app.observability.metrics import REGISTRY
from cnop_app.observability.middleware import add_request_observer
from cnop_app.services import coingecko, health

WINDOW_SECONDS = 300
MAX_EVENTS = 20_000
IGNORED_ROUTES = frozenset({"/health", "/metrics"})
UI_EVENT_KINDS = ("page_view", "order", "login", "logout", "deposit", "withdraw", "search", "other")
SHARED_KEY = "activity:last_seen"
SHARED_PUBLISH_SECONDS = 5
REFRESH_OUTCOMES = ("ok", "failed", "breaker_open", "backoff")
BREAKER_LEVELS = {coingecko.CLOSED: 0, coingecko.HALF_OPEN: 1, coingecko.OPEN: 2}

REFRESH_RUNS = Counter("cnop_market_refresh_total", "Price refreshes by outcome", ["outcome"], registry=REGISTRY)
REFRESH_DURATION = Histogram(
    "cnop_market_refresh_duration_seconds",
    "Duration of one price refresh (feed call, mapping and storing)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
LAST_SUCCESS = Gauge(
    "cnop_market_last_success_timestamp_seconds",
    "Unix time of the last good price refresh",
    registry=REGISTRY,
    multiprocess_mode="max",
)
REFRESH_INTERVAL = Gauge(
    "cnop_market_refresh_interval_seconds",
    "Current price refresh interval (active or idle rate)",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
BREAKER_STATE = Gauge(
    "cnop_market_breaker_state",
    "CoinGecko circuit breaker: 0 closed, 1 half-open, 2 open",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
ACTIVE_USERS = Gauge(
    "cnop_active_users",
    "Distinct logged-in users seen within the idle window (the busiest worker's count)",
    registry=REGISTRY,
    multiprocess_mode="livemax",
)
APP_ACTIVE = Gauge(
    "cnop_app_active",
    "1 while the app is active (refreshing at the active rate)",
    registry=REGISTRY,
    multiprocess_mode="livemax",
)
UI_EVENTS = Counter("cnop_ui_events_total", "UI events (page views, orders...) by kind", ["kind"], registry=REGISTRY)
for _outcome in REFRESH_OUTCOMES:
    REFRESH_RUNS.labels(_outcome)


class _Monitor:
    """Times are integer unix nanoseconds (`time.time_ns()`: exact, comparable across processes) and
    request durations integer microseconds: no binary floats in services/."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (at ns, method, route template, status, duration µs)
        self.requests: deque[tuple[int, str, str, int, int]] = deque(maxlen=MAX_EVENTS)
        self.ui_events: deque[tuple[int, str]] = deque(maxlen=MAX_EVENTS)
        self.users: dict[str, int] = {}
        self.last_activity: int | None = None
        self.shared_last: int | None = None
        self.published: int | None = None

    def touch(self, now: int) -> None:
        if self.last_activity is None or now > self.last_activity:
            self.last_activity = now

    def prune(self, now: int) -> None:
        horizon = now - max(WINDOW_SECONDS, get_settings().idle_after_seconds) * NS_PER_SECOND
        while self.requests and self.requests[0][0] < horizon:
            self.requests.popleft()
        while self.ui_events and self.ui_events[0][0] < horizon:
            self.ui_events.popleft()
        for name in [n for n, seen in self.users.items() if seen < horizon]:
            del self.users[name]


_monitor = _Monitor()


def record_request(method: str, route: str, status: int, micros: int) -> None:
    """Request observer (registered with the HTTP middleware): one finished API request and its
    duration in whole microseconds."""
    if route in IGNORED_ROUTES:
        return
    now = time.time_ns()
    with _monitor.lock:
        _monitor.requests.append((now, method, route, status, micros))
        _monitor.touch(now)


def record_user(username: str | None) -> None:
    """A logged-in user did something (call from authenticated routes or UI handlers)."""
    if not username:
        return
    now = time.time_ns()
    with _monitor.lock:
        _monitor.users[username] = now
        _monitor.touch(now)


def record_ui_event(kind: str, username: str | None = None) -> None:
    """A UI event: page view, order placed... `kind` outside UI_EVENT_KINDS is counted as "other"."""
    label = kind if kind in UI_EVENT_KINDS else "other"
    now = time.time_ns()
    UI_EVENTS.labels(label).inc()
    with _monitor.lock:
        _monitor.ui_events.append((now, label))
        if username:
            _monitor.users[username] = now
        _monitor.touch(now)


def _last_activity_ns() -> int | None:
    """Newest activity seen by this process or published by another one (unix ns)."""
    with _monitor.lock:
        times = [t for t in (_monitor.last_activity, _monitor.shared_last) if t is not None]
    return max(times) if times else None


def _as_datetime(ns: int | None) -> datetime | None:
    if ns is None:
        return None
    seconds, rest = divmod(ns, NS_PER_SECOND)
    return datetime.fromtimestamp(seconds, timezone.utc) + timedelta(microseconds=rest // 1000)


def last_activity_at() -> datetime | None:
    return _as_datetime(_last_activity_ns())


def is_active() -> bool:
    return _active(_last_activity_ns(), time.time_ns())


def _active(last_ns: int | None, now_ns: int) -> bool:
    return last_ns is not None and now_ns - last_ns < get_settings().idle_after_seconds * NS_PER_SECOND


def active_user_count() -> int:
    horizon = time.time_ns() - get_settings().idle_after_seconds * NS_PER_SECOND
    with _monitor.lock:
        return sum(1 for seen in _monitor.users.values() if seen >= horizon)


def sync_shared() -> bool:
    """Publish this process's newest activity (throttled) and read the others'. Returns is_active()."""
    with _monitor.lock:
        local, published = _monitor.last_activity, _monitor.published
    if local is not None and (published is None or local - published >= SHARED_PUBLISH_SECONDS * NS_PER_SECOND):
        with write_session() as session:
            row = session.get(KeyValue, SHARED_KEY)
            stored = _shared_time(row)
            if stored is None or local > stored:
                text = json.dumps({"at_ns": local})
                if row is None:
                    session.add(KeyValue(key=SHARED_KEY, value=text))
                else:
                    row.value = text
                    row.updated_at = utcnow()
                    session.add(row)
            shared = max(local, stored or local)
        with _monitor.lock:
            _monitor.published = local
            _monitor.shared_last = shared
    else:
        with read_session() as session:
            shared = _shared_time(session.get(KeyValue, SHARED_KEY))
        with _monitor.lock:
            _monitor.shared_last = shared
    return is_active()


def _shared_time(row: KeyValue | None) -> int | None:
    """The published newest activity (unix ns); None when missing or unreadable (then overwritten)."""
    if row is None:
        return None
    try:
        value = json.loads(row.value).get("at_ns")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _percentile(sorted_values: list[int], fraction: Fraction) -> int:
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def snapshot() -> dict[str, Any]:
    """The monitor's state: mode, users, requests and latency per route template, UI events (last 5 min)."""
    settings = get_settings()
    now = time.time_ns()
    with _monitor.lock:
        _monitor.prune(now)
        window_start = now - WINDOW_SECONDS * NS_PER_SECOND
        requests = [r for r in _monitor.requests if r[0] >= window_start]
        ui_events = [e for e in _monitor.ui_events if e[0] >= window_start]
    by_route: dict[str, list[tuple[int, int]]] = {}
    for _at, method, route, status, micros in requests:
        by_route.setdefault(f"{method} {route}", []).append((status, micros))
    routes = {}
    for key, items in sorted(by_route.items()):
        latencies = sorted(s for _status, s in items)
        routes[key] = {
            "count": len(items),
            "errors": sum(1 for status, _s in items if status >= 500),
            "p50_ms": round(_percentile(latencies, Fraction(1, 2)) / 1000, 2),
            "p95_ms": round(_percentile(latencies, Fraction(95, 100)) / 1000, 2),
        }
    last_ns = _last_activity_ns()
    active = _active(last_ns, now)
    return {
        "mode": "active" if active else "idle",
        "active": active,
        "idle_after_seconds": settings.idle_after_seconds,
        "last_activity_at": iso(_as_datetime(last_ns)),
        "last_activity_age_seconds": (now - last_ns) // NS_PER_SECOND if last_ns is not None else None,
        "window_seconds": WINDOW_SECONDS,
        "requests_in_window": len(requests),
        "routes": routes,
        "ui_events": dict(Tally(kind for _at, kind in ui_events)),
        "active_users": active_user_count(),
    }


def reset() -> None:
    """Forget everything (tests)."""
    with _monitor.lock:
        _monitor.requests.clear()
        _monitor.ui_events.clear()
        _monitor.users.clear()
        _monitor.last_activity = _monitor.shared_last = _monitor.published = None


# ---------------------------------------------------------------- market metrics (written by the refresher)


def observe_refresh(outcome: str, duration_ms: int) -> None:
    REFRESH_RUNS.labels(outcome if outcome in REFRESH_OUTCOMES else "failed").inc()
    REFRESH_DURATION.observe(duration_ms / 1000)


def set_market_gauges(last_success: datetime | None, breaker_state: str) -> None:
    if last_success is not None:
        LAST_SUCCESS.set(last_success.timestamp())
    BREAKER_STATE.set(BREAKER_LEVELS.get(breaker_state, 0))


def set_refresh_interval(seconds: int) -> None:
    REFRESH_INTERVAL.set(seconds)


def _health() -> dict[str, Any]:
    snap = snapshot()
    return {
        "status": "ok",
        "mode": snap["mode"],
        "active_users": snap["active_users"],
        "requests_in_window": snap["requests_in_window"],
        "last_activity_age_seconds": snap["last_activity_age_seconds"],
    }


ACTIVE_USERS.set_function(active_user_count)
APP_ACTIVE.set_function(lambda: 1 if is_active() else 0)
health.register_check("activity", _health)
add_request_observer(record_request)
