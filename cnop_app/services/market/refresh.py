"""One price refresh from CNOP_MARKET_SOURCE: fetch, store, status, breaker bookkeeping, metrics.

Sources: `coingecko` (one `/coins/markets` call per refresh), `snapshot` (the bundled snapshot,
static), `simulated` (one random-walk step). A refresh that gets prices stores them in one transaction
(`store.store_prices`). A failed one changes no price: it records the outcome, the retry time and the
breaker state in the shared status, and the last good prices keep serving.

The breaker lives in the shared status, not in the client: each refresh restores it from there and
saves it back, so every process (and a new refresher after fail-over) continues the same breaker.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cnop_app.config import Settings, get_settings
from cnop_app.db import write_session
from cnop_app.domain.timeutil import iso, parse_iso, utcnow
from cnop_app.observability.logging import get_logger
from cnop_app.services import activity, coingecko
from cnop_app.services.market.simulator import simulate
from cnop_app.services.market.snapshot import ensure_catalogue, snapshot_coins
from cnop_app.services.market.status import breaker_state, load_status, read_status, version_of, write_status
from cnop_app.services.market.store import store_prices

_log = get_logger("market")


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did. outcome: ok | failed | breaker_open | backoff (| busy from the scheduler)."""

    outcome: str
    source: str
    stored: int = 0
    changed: int = 0
    skipped: int = 0
    version: int = 0
    duration_ms: int = 0
    error: str | None = None
    retry_at: datetime | None = None

    @property
    def stored_prices(self) -> bool:
        return self.outcome == "ok" and self.stored > 0


_client_lock = threading.Lock()
_client: coingecko.CoinGeckoClient | None = None
_client_key: tuple[Any, ...] | None = None


def _feed_client(settings: Settings) -> coingecko.CoinGeckoClient:
    """One client per process, rebuilt when its settings change (tests switch feeds)."""
    global _client, _client_key
    key = (
        settings.coingecko_base_url,
        settings.coingecko_api_key,
        settings.coingecko_api_key_type,
        settings.breaker_failures,
        settings.breaker_reset_seconds,
        settings.refresh_active_seconds,
    )
    with _client_lock:
        if _client is None or _client_key != key:
            if _client is not None:
                _client.close()
            # Back-off starts small relative to the active interval and never exceeds the breaker's reset time.
            base = timedelta(seconds=min(2, settings.refresh_active_seconds)) / 2
            breaker = coingecko.CircuitBreaker(
                settings.breaker_failures,
                settings.breaker_reset_seconds,
                backoff_base=base,
                backoff_max=timedelta(seconds=settings.breaker_reset_seconds),
            )
            _client = coingecko.CoinGeckoClient(
                settings.coingecko_base_url, settings.coingecko_api_key, settings.coingecko_api_key_type, breaker
            )
            _client_key = key
        return _client


def _record_failure(status_updates: dict[str, Any], counts_as_failure: bool) -> int:
    """Save a refresh that stored nothing; returns the (unchanged) market version."""
    with write_session() as session:
        status = read_status(session, lock=True)
        status.update(status_updates)
        if counts_as_failure:
            status["consecutive_failures"] = int(status.get("consecutive_failures") or 0) + 1
        write_status(session, status)
        return version_of(status)


def refresh_prices() -> RefreshResult:
    """One refresh from CNOP_MARKET_SOURCE. Never raises for feed problems; never touches prices on failure."""
    settings = get_settings()
    source = settings.market_source
    started = time.perf_counter()
    ensure_catalogue()
    now = utcnow()  # after seeding, so the attempt time is the feed call's time
    status = load_status()
    base_updates: dict[str, Any] = {"last_attempt_at": iso(now), "source": source}
    coins: list[dict[str, Any]] = []
    skipped = 0
    outcome, error, retry_at = "ok", None, None
    breaker: dict[str, Any] | None = None
    try:
        if source == "coingecko":
            client = _feed_client(settings)
            client.breaker.restore(status.get("breaker"))
            try:
                page = client.fetch_markets(min(settings.market_coins, coingecko.MAX_PER_PAGE))
                coins, skipped = page.coins, page.skipped
            except coingecko.FeedUnavailable as exc:
                outcome, error, retry_at = exc.reason, str(exc), exc.retry_at
            except coingecko.FeedError as exc:
                outcome, error = "failed", str(exc)
            breaker = client.breaker.to_dict()
            retry_at = retry_at or client.breaker.next_call_at()
        elif source == "snapshot":
            coins = snapshot_coins()
        else:
            step = int(status.get("sim_step") or 0) + 1
            coins = simulate(settings, step)
            base_updates["sim_step"] = step
        if breaker is not None:
            base_updates["breaker"] = breaker
        if outcome == "ok":
            base_updates.update({"last_outcome": "ok", "coins_skipped": skipped, "retry_at": None})
            stored, changed, version = store_prices(coins, source, base_updates)
        else:
            stored = changed = 0
            base_updates.update({"last_outcome": outcome, "last_error": error, "retry_at": iso(retry_at)})
            version = _record_failure(base_updates, counts_as_failure=outcome == "failed")
    except Exception as exc:  # a database or programming error must not kill the scheduler job
        _log.exception("price refresh failed", extra={"source": source})
        outcome, error, stored, changed, version = "failed", f"{type(exc).__name__}: {exc}"[:300], 0, 0, 0
    duration_ms = int((time.perf_counter() - started) * 1000)
    result = RefreshResult(outcome, source, stored, changed, skipped, version, duration_ms, error, retry_at)
    activity.observe_refresh(outcome, duration_ms)
    _update_gauges()
    log = _log.info if outcome == "ok" else _log.warning
    log(
        "price refresh",
        extra={
            "outcome": outcome,
            "source": source,
            "stored": stored,
            "changed": changed,
            "skipped": skipped,
            "ms": duration_ms,
            "error": error,
        },
    )
    return result


def _update_gauges() -> None:
    status = load_status()
    activity.set_market_gauges(parse_iso(status.get("last_success_at")), breaker_state(status.get("breaker") or {}))
