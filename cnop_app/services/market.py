"""Market data: the asset catalogue, price refreshes from the configured source, history and status.

Sources (`CNOP_MARKET_SOURCE`): `coingecko` (one `/coins/markets` call per refresh), `snapshot`
(the bundled `assets/market_snapshot.json`, static), `simulated` (a seeded random walk around the
snapshot, one step per refresh). Every source goes through the same mapper (`coingecko.map_coins`).

A refresh that gets prices stores them in ONE transaction: asset rows upserted, one PriceTick per
asset, an outbox record per changed asset, and the market status (with its version number) in the
KeyValue table, where every worker process reads it. A failed refresh changes no price: the last
good prices keep serving and the status says how stale they are.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from cnop_app.config import Settings, get_settings
from cnop_app.db import read_session, write_session
from cnop_app.domain.errors import NotFound, ValidationFailed
from cnop_app.models import Asset, KeyValue, PriceTick
from cnop_app.observability.logging import get_logger
from cnop_app.services import activity, coingecko, health, outbox, validation
from cnop_app.services.coingecko import iso, parse_iso

_log = get_logger("market")

ROOT = Path(__file__).resolve().parent.parent.parent
SNAPSHOT_PATH = ROOT / "assets" / "market_snapshot.json"
STATUS_KEY = "market:status"
HISTORY_RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
TICK_RETENTION = timedelta(days=35)
MAX_HISTORY_POINTS = 360
MAX_LIST_LIMIT = 250
CACHE_CHECK_SECONDS = 2
STABLECOINS = frozenset({"USDT", "USDC", "DAI", "USDE", "FDUSD", "PYUSD", "TUSD", "USDS", "USD1", "USDD", "RLUSD"})
# Fields that, when different, make an asset "changed" (outbox record, live push).
MARKET_FIELDS = (
    "coingecko_id",
    "name",
    "image",
    "price_usd",
    "market_cap",
    "market_cap_rank",
    "total_volume_24h",
    "high_24h",
    "low_24h",
    "price_change_24h",
    "price_change_percentage_24h",
    "price_change_percentage_7d",
    "price_change_percentage_30d",
    "circulating_supply",
    "total_supply",
    "max_supply",
    "ath",
    "ath_change_percentage",
    "ath_date",
    "atl",
    "atl_change_percentage",
    "atl_date",
    "last_updated",
)
# Simulated market: mean reversion towards the snapshot price and per-step volatility.
SIM_REVERSION = Decimal("0.05")
SIM_SIGMA = Decimal("0.006")
SIM_SIGMA_STABLE = Decimal("0.0002")
SIM_MIN_RATIO, SIM_MAX_RATIO = Decimal("0.5"), Decimal("2")


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did. outcome: ok | failed | breaker_open | backoff."""

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


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _sig(value: Decimal, digits: int = 10) -> Decimal:
    """Round to `digits` significant digits (at most 18 decimals, the PostgreSQL column scale)."""
    if value == 0:
        return Decimal(0)
    exponent = max(value.adjusted() - digits + 1, -18)
    return value.quantize(Decimal(1).scaleb(exponent)).normalize()


def _pct(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.000001"))


# ---------------------------------------------------------------- key/value status


def _read_kv(session: Session, key: str) -> dict[str, Any]:
    row = session.get(KeyValue, key)
    if row is None:
        return {}
    try:
        data = json.loads(row.value)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _write_kv(session: Session, key: str, data: dict[str, Any]) -> None:
    row = session.get(KeyValue, key)
    text = json.dumps(data, sort_keys=True)
    if row is None:
        session.add(KeyValue(key=key, value=text, updated_at=_now()))
    else:
        row.value = text
        row.updated_at = _now()
        session.add(row)


def load_status() -> dict[str, Any]:
    """The raw market status shared by all worker processes."""
    with read_session() as session:
        return _read_kv(session, STATUS_KEY)


def market_version() -> int:
    """Bumped by every refresh that stored prices: a cheap "did prices change?" poll."""
    return int(load_status().get("version") or 0)


# ---------------------------------------------------------------- snapshot


@lru_cache(maxsize=4)
def _snapshot_coins(path: str, mtime_ns: int) -> tuple[dict[str, Any], ...]:
    coins, skipped = coingecko.map_coins(coingecko.parse_body(Path(path).read_bytes()))
    if skipped:
        _log.warning("snapshot coins skipped", extra={"skipped": skipped})
    return tuple(coins)


def snapshot_coins() -> list[dict[str, Any]]:
    """The bundled snapshot, mapped exactly like a feed response (copies: callers may modify them)."""
    stat = SNAPSHOT_PATH.stat()
    return [dict(coin) for coin in _snapshot_coins(str(SNAPSHOT_PATH), stat.st_mtime_ns)]


def seed_from_snapshot() -> int:
    """Fill an empty catalogue from the bundled snapshot. Returns the number of assets added (0 if not empty)."""
    with read_session() as session:
        if session.exec(select(func.count()).select_from(Asset)).one():
            return 0
    coins = snapshot_coins()
    as_of = max((c["last_updated"] for c in coins if c["last_updated"]), default=None)
    try:
        stored, _changed, _version = _store(
            coins, "snapshot", {"snapshot_as_of": iso(as_of)}, only_if_empty=True, success=False
        )
    except IntegrityError:
        return 0  # another process seeded at the same moment
    if stored:
        _log.info("catalogue seeded from snapshot", extra={"assets": stored})
    return stored


# ---------------------------------------------------------------- storing a refresh


def _category(asset_id: str) -> str:
    return "stablecoin" if asset_id in STABLECOINS else "crypto"


def _sparkline_text(points: list[Decimal]) -> str:
    # str() may use exponent notation ("1.2E-8"): still a valid JSON number, and much cheaper than format().
    return "[" + ",".join(map(str, points)) + "]"


def _sparkline_values(text: str) -> list[Decimal]:
    try:
        values = json.loads(text or "[]", parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        return []
    return [v for v in values if isinstance(v, Decimal)] if isinstance(values, list) else []


def _backfill_ticks(asset_id: str, coin: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """A new asset gets its 7-day sparkline as history (hourly points), so charts are never empty."""
    points = coin.get("sparkline_7d") or []
    if len(points) < 2:
        return []
    # Anchored at now: for the bundled snapshot, its sparkline stands for the last 7 days.
    step = timedelta(days=7) / len(points)
    end = now
    return [
        {"asset_id": asset_id, "price": price, "at": end - step * (len(points) - i)}
        for i, price in enumerate(points)
        if price > 0
    ]


def _store(
    coins: list[dict[str, Any]],
    source: str,
    status_updates: dict[str, Any],
    *,
    only_if_empty: bool = False,
    success: bool = True,
) -> tuple[int, int, int]:
    """Upsert assets, add ticks, bump the version: one transaction. Returns (stored, changed, version)."""
    now = _now()
    changed_rows: list[Asset] = []
    with write_session() as session:
        if only_if_empty and session.exec(select(func.count()).select_from(Asset)).one():
            return 0, 0, int(_read_kv(session, STATUS_KEY).get("version") or 0)
        ids = [c["id"] for c in coins]
        existing = {a.id: a for a in session.exec(select(Asset).where(col(Asset.id).in_(ids))).all()}
        ticks: list[dict[str, Any]] = []
        for coin in coins:
            asset = existing.get(coin["id"])
            values = {field: coin.get(field) for field in MARKET_FIELDS}
            values["last_updated"] = values["last_updated"] or now
            sparkline = _sparkline_text(coin.get("sparkline_7d") or [])
            if asset is None:
                asset = Asset(
                    id=coin["id"],
                    category=_category(coin["id"]),
                    is_active=True,
                    source=source,
                    updated_at=now,
                    **values,
                )
                asset.sparkline_7d = sparkline
                session.add(asset)
                changed_rows.append(asset)
                ticks.extend(_backfill_ticks(coin["id"], coin, now))
            else:
                differs = asset.source != source or asset.sparkline_7d != sparkline
                for field, value in values.items():
                    if getattr(asset, field) != value:
                        differs = True
                        setattr(asset, field, value)
                asset.sparkline_7d = sparkline
                asset.source = source
                asset.updated_at = now
                session.add(asset)
                if differs:
                    changed_rows.append(asset)
            ticks.append({"asset_id": coin["id"], "price": coin["price_usd"], "at": now})
        session.flush()
        for asset in changed_rows:
            outbox.emit(session, "asset", asset.id, asset)
        if ticks:
            session.execute(insert(PriceTick), ticks)
        # Retention: the (asset_id, at) index makes this cheap.
        session.execute(
            delete(PriceTick).where(col(PriceTick.asset_id).in_(ids), col(PriceTick.at) < now - TICK_RETENTION)
        )
        status = _read_kv(session, STATUS_KEY)
        version = int(status.get("version") or 0) + 1
        status.update(status_updates)
        status["version"] = version
        status["coins_stored"] = len(coins)
        if success:
            status.update(
                {
                    "last_success_at": iso(now),
                    "last_success_source": source,
                    "consecutive_failures": 0,
                    "last_error": None,
                }
            )
        _write_kv(session, STATUS_KEY, status)
    _cache.put({c["id"]: c["price_usd"] for c in coins}, version)
    return len(coins), len(changed_rows), version


def _record_failure(status_updates: dict[str, Any], counts_as_failure: bool) -> int:
    with write_session() as session:
        status = _read_kv(session, STATUS_KEY)
        status.update(status_updates)
        if counts_as_failure:
            status["consecutive_failures"] = int(status.get("consecutive_failures") or 0) + 1
        _write_kv(session, STATUS_KEY, status)
        return int(status.get("version") or 0)


# ---------------------------------------------------------------- sources


_client_lock = threading.Lock()
_client: coingecko.CoinGeckoClient | None = None
_client_key: tuple[Any, ...] | None = None


def _feed_client(settings: Settings) -> coingecko.CoinGeckoClient:
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


def _simulate(settings: Settings, step: int) -> list[dict[str, Any]]:
    """One step of a seeded random walk that reverts towards the snapshot prices (Decimal math only)."""
    now = _now()
    with read_session() as session:
        current = dict(session.exec(select(Asset.id, Asset.price_usd)).all())
    coins = snapshot_coins()
    for coin in coins:
        base = coin["price_usd"]
        previous = current.get(coin["id"]) or base
        rng = random.Random(f"{settings.simulated_seed}:{step}:{coin['id']}")
        # Uniform on [-1, 1] scaled by sqrt(3): unit variance.
        shock = Decimal(rng.randint(-1_000_000, 1_000_000)) / Decimal(1_000_000) * Decimal(3).sqrt()
        sigma = SIM_SIGMA_STABLE if coin["id"] in STABLECOINS else SIM_SIGMA
        ratio = previous / base
        ratio = ratio + SIM_REVERSION * (1 - ratio) + sigma * shock
        ratio = min(max(ratio, SIM_MIN_RATIO), SIM_MAX_RATIO)
        price = _sig(base * ratio)
        _move_coin(coin, price, now)
    return coins


def _move_coin(coin: dict[str, Any], price: Decimal, now: datetime) -> None:
    """Set a new price on a snapshot coin and keep the derived fields consistent with it."""
    base = coin["price_usd"]
    open_24h = base - coin["price_change_24h"] if coin.get("price_change_24h") is not None else base
    if open_24h > 0:
        coin["price_change_24h"] = _sig(price - open_24h)
        coin["price_change_percentage_24h"] = _pct((price - open_24h) / open_24h * 100)
    for key in ("price_change_percentage_7d", "price_change_percentage_30d"):
        if coin.get(key) is not None and coin[key] > -100:
            opened = base / (1 + coin[key] / 100)
            coin[key] = _pct((price - opened) / opened * 100)
    coin["high_24h"] = max(coin.get("high_24h") or price, price)
    coin["low_24h"] = min(coin.get("low_24h") or price, price)
    if coin.get("circulating_supply"):
        coin["market_cap"] = (price * coin["circulating_supply"]).quantize(Decimal(1))
    elif coin.get("market_cap") is not None:
        coin["market_cap"] = (coin["market_cap"] * price / base).quantize(Decimal(1))
    if coin.get("ath") is not None:
        if price > coin["ath"]:
            coin["ath"], coin["ath_date"] = price, now
        coin["ath_change_percentage"] = _pct((price - coin["ath"]) / coin["ath"] * 100)
    if coin.get("atl"):
        if price < coin["atl"]:
            coin["atl"], coin["atl_date"] = price, now
        coin["atl_change_percentage"] = _pct((price - coin["atl"]) / coin["atl"] * 100)
    if coin.get("sparkline_7d"):
        coin["sparkline_7d"] = [*coin["sparkline_7d"][:-1], price]
    coin["price_usd"] = price
    coin["last_updated"] = now


def ensure_catalogue() -> None:
    """The catalogue is never empty: seed it from the snapshot when it is."""
    seed_from_snapshot()


def refresh_prices() -> RefreshResult:
    """One refresh from CNOP_MARKET_SOURCE. Never raises for feed problems; never touches prices on failure."""
    settings = get_settings()
    source = settings.market_source
    started = time.perf_counter()
    ensure_catalogue()
    now = _now()  # after seeding, so the attempt time is the feed call's time
    status = load_status()
    base_updates: dict[str, Any] = {"last_attempt_at": iso(now), "source": source}
    coins: list[dict[str, Any]] = []
    skipped = 0
    outcome, error, retry_at = "ok", None, None
    breaker_state: dict[str, Any] | None = None
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
            breaker_state = client.breaker.to_dict()
            retry_at = retry_at or client.breaker.next_call_at()
        elif source == "snapshot":
            coins = snapshot_coins()
        else:
            step = int(status.get("sim_step") or 0) + 1
            coins = _simulate(settings, step)
            base_updates["sim_step"] = step
        if breaker_state is not None:
            base_updates["breaker"] = breaker_state
        if outcome == "ok":
            base_updates.update({"last_outcome": "ok", "coins_skipped": skipped, "retry_at": None})
            stored, changed, version = _store(coins, source, base_updates)
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


def _update_gauges(status: dict[str, Any] | None = None) -> None:
    status = status if status is not None else load_status()
    breaker = status.get("breaker") or {}
    activity.set_market_gauges(parse_iso(status.get("last_success_at")), _breaker_state(breaker))


def _breaker_state(breaker: dict[str, Any]) -> str:
    state = breaker.get("state") or coingecko.CLOSED
    opened = parse_iso(breaker.get("opened_at"))
    if (
        state == coingecko.OPEN
        and opened
        and _now() >= opened + timedelta(seconds=get_settings().breaker_reset_seconds)
    ):
        return coingecko.HALF_OPEN
    return state


# ---------------------------------------------------------------- price cache


class _PriceCache:
    """Latest prices per process; re-checked against the shared version at most every 2 seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.prices: dict[str, Decimal] = {}
        self.version: int | None = None
        self.checked = 0.0
        self.database_url: str | None = None

    def put(self, prices: dict[str, Decimal], version: int) -> None:
        url = get_settings().database_url
        with self._lock:
            merged = dict(self.prices) if self.version is not None and self.database_url == url else {}
            merged.update(prices)
            self.prices, self.version, self.checked, self.database_url = merged, version, time.monotonic(), url

    def reload(self) -> bool:
        """Load from the database when the shared version moved. True when it did."""
        url = get_settings().database_url
        with read_session() as session:
            version = int(_read_kv(session, STATUS_KEY).get("version") or 0)
            if version == self.version and url == self.database_url:
                self.checked = time.monotonic()
                return False
            rows = session.exec(select(Asset.id, Asset.price_usd)).all()
        with self._lock:
            self.prices = {asset_id: price for asset_id, price in rows if price is not None}
            self.version, self.checked, self.database_url = version, time.monotonic(), url
        return True

    def get(self) -> dict[str, Decimal]:
        stale = time.monotonic() - self.checked > CACHE_CHECK_SECONDS
        if self.version is None or stale or self.database_url != get_settings().database_url:
            self.reload()
        with self._lock:
            return dict(self.prices)

    def clear(self) -> None:
        with self._lock:
            self.prices, self.version, self.checked, self.database_url = {}, None, 0.0, None


_cache = _PriceCache()


def latest_prices() -> dict[str, Decimal]:
    """asset_id -> latest USD price, from memory (at most ~2 s behind another process's refresh)."""
    return _cache.get()


def latest_price(asset_id: str) -> Decimal | None:
    return latest_prices().get(asset_id)


def reload_prices_if_changed() -> bool:
    """Refresh the cache now when another process stored prices. True when prices changed."""
    return _cache.reload()


def clear_cache() -> None:
    """Forget cached prices (tests switching databases)."""
    _cache.clear()


# ---------------------------------------------------------------- status


def _stale(settings: Settings, status: dict[str, Any], now: datetime) -> bool:
    if settings.market_source != "coingecko":
        return False  # snapshot and simulated are chosen on purpose, not a broken feed
    last = parse_iso(status.get("last_success_at"))
    if last is None or int(status.get("consecutive_failures") or 0) > 0:
        return True
    if _breaker_state(status.get("breaker") or {}) != coingecko.CLOSED:
        return True
    return now - last > timedelta(seconds=2 * settings.refresh_idle_seconds)


def market_status() -> dict[str, Any]:
    """Last good refresh, staleness, source, breaker state, activity mode: the same in every process."""
    settings = get_settings()
    status = load_status()
    now = _now()
    active = activity.is_active()
    as_of = parse_iso(status.get("last_success_at")) or parse_iso(status.get("snapshot_as_of"))
    breaker = status.get("breaker") or {}
    return {
        "source": settings.market_source,
        "as_of": iso(as_of),
        "age_seconds": int((now - as_of).total_seconds()) if as_of else None,
        "stale": _stale(settings, status, now),
        "version": int(status.get("version") or 0),
        "last_attempt_at": status.get("last_attempt_at"),
        "last_outcome": status.get("last_outcome"),
        "last_error": status.get("last_error"),
        "consecutive_failures": int(status.get("consecutive_failures") or 0),
        "retry_at": status.get("retry_at") if status.get("last_outcome") != "ok" else None,
        "coins_stored": status.get("coins_stored"),
        "coins_skipped": status.get("coins_skipped"),
        "breaker": {
            "state": _breaker_state(breaker),
            "failures": int(breaker.get("failures") or 0),
            "opened_at": breaker.get("opened_at"),
            "threshold": settings.breaker_failures,
            "reset_seconds": settings.breaker_reset_seconds,
        },
        "mode": "active" if active else "idle",
        "interval_seconds": settings.refresh_active_seconds if active else settings.refresh_idle_seconds,
    }


def _health() -> dict[str, Any]:
    status = market_status()
    return {
        "status": "degraded" if status["stale"] else "ok",
        "source": status["source"],
        "as_of": status["as_of"],
        "breaker": status["breaker"]["state"],
        "mode": status["mode"],
    }


health.register_check("market", _health)


# ---------------------------------------------------------------- catalogue queries and API shapes


def _rank_order() -> tuple[Any, ...]:
    return (col(Asset.market_cap_rank).is_(None), col(Asset.market_cap_rank), col(Asset.id))


def _staleness(asset: Asset, status: dict[str, Any], global_stale: bool, now: datetime) -> dict[str, Any]:
    seen = asset.last_updated or asset.updated_at
    last_success = parse_iso(status.get("last_success_at"))
    # An asset the last good refresh did not include is stale on its own.
    missing = last_success is not None and asset.updated_at < last_success - timedelta(seconds=1)
    return {
        "price_age_seconds": max(0, int((now - seen).total_seconds())) if seen else None,
        "stale": global_stale or missing,
    }


def asset_summary(asset: Asset, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """A list item (DESIGN.md section 3). Numbers are Decimal; the API renders them as JSON numbers."""
    context = context or _status_context()
    data = {
        "asset_id": asset.id,
        "name": asset.name,
        "description": asset.description or None,
        "category": asset.category,
        "price_usd": asset.price_usd,
        "is_active": asset.is_active,
        "symbol": asset.id,
        "image": asset.image,
        "market_cap_rank": asset.market_cap_rank,
        "price_change_percentage_24h": asset.price_change_percentage_24h,
        "market_cap": asset.market_cap,
        "total_volume_24h": asset.total_volume_24h,
        "price_change_percentage_7d": asset.price_change_percentage_7d,
        "last_updated": iso(asset.last_updated),
        "source": asset.source,
    }
    data.update(_staleness(asset, context["status"], context["stale"], context["now"]))
    return data


def asset_detail(asset: Asset, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The detail shape: list keys plus every market field and the 7-day sparkline."""
    data = asset_summary(asset, context)
    data.update(
        {
            "availability_status": "available" if asset.is_active else "unavailable",
            "price_change_24h": asset.price_change_24h,
            "price_change_percentage_30d": asset.price_change_percentage_30d,
            "high_24h": asset.high_24h,
            "low_24h": asset.low_24h,
            "circulating_supply": asset.circulating_supply,
            "total_supply": asset.total_supply,
            "max_supply": asset.max_supply,
            "ath": asset.ath,
            "ath_change_percentage": asset.ath_change_percentage,
            "ath_date": iso(asset.ath_date),
            "atl": asset.atl,
            "atl_change_percentage": asset.atl_change_percentage,
            "atl_date": iso(asset.atl_date),
            "sparkline_7d": _sparkline_values(asset.sparkline_7d),
            "coingecko_id": asset.coingecko_id,
        }
    )
    return data


def _status_context() -> dict[str, Any]:
    status = load_status()
    now = _now()
    return {"status": status, "stale": _stale(get_settings(), status, now), "now": now}


def list_assets(active_only: bool = True, limit: int = 50) -> dict[str, Any]:
    """`{"data": [...], "total_count", "active_count"}` ordered by market-cap rank."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIST_LIMIT}", "limit")
    context = _status_context()
    with read_session() as session:
        query = select(Asset)
        if active_only:
            query = query.where(col(Asset.is_active).is_(True))
        rows = session.exec(query.order_by(*_rank_order()).limit(limit)).all()
        total = session.exec(select(func.count()).select_from(Asset)).one()
        active = session.exec(select(func.count()).select_from(Asset).where(col(Asset.is_active).is_(True))).one()
    return {"data": [asset_summary(a, context) for a in rows], "total_count": total, "active_count": active}


def all_assets(active_only: bool = False) -> list[dict[str, Any]]:
    """Every asset as a detail dict (the market page: sparkline included), ordered by rank."""
    context = _status_context()
    with read_session() as session:
        query = select(Asset)
        if active_only:
            query = query.where(col(Asset.is_active).is_(True))
        rows = session.exec(query.order_by(*_rank_order())).all()
    return [asset_detail(a, context) for a in rows]


def get_asset(asset_id: object) -> dict[str, Any]:
    """The detail of one asset; 422 for a malformed id, 404 for an unknown one."""
    key = validation.asset_id(asset_id)
    with read_session() as session:
        asset = session.get(Asset, key)
    if asset is None:
        raise NotFound(f"Asset {key} not found")
    return asset_detail(asset)


def _downsample(
    rows: list[tuple[datetime, Decimal]], since: datetime, span: timedelta
) -> list[tuple[datetime, Decimal]]:
    if len(rows) <= MAX_HISTORY_POINTS:
        return rows
    width = span / MAX_HISTORY_POINTS
    buckets: dict[int, tuple[datetime, Decimal]] = {}
    for at, price in rows:
        buckets[int((at - since) / width)] = (at, price)  # the last tick of each bucket
    return [buckets[k] for k in sorted(buckets)]


def asset_history(asset_id: object, range_: object = "24h") -> dict[str, Any]:
    """Price points for charts: `{"asset_id", "range", "points": [{"at", "price"}], "change_percentage"}`."""
    key = validation.asset_id(asset_id)
    if not isinstance(range_, str) or range_ not in HISTORY_RANGES:
        raise ValidationFailed("range must be one of 24h, 7d, 30d", "range")
    span = HISTORY_RANGES[range_]
    since = _now() - span
    with read_session() as session:
        if session.get(Asset, key) is None:
            raise NotFound(f"Asset {key} not found")
        rows = session.exec(
            select(PriceTick.at, PriceTick.price)
            .where(PriceTick.asset_id == key, col(PriceTick.at) >= since)
            .order_by(col(PriceTick.at))
        ).all()
    points = _downsample([(at, price) for at, price in rows], since, span)
    change = None
    if len(points) >= 2 and points[0][1] > 0:
        change = _pct((points[-1][1] - points[0][1]) / points[0][1] * 100)
    return {
        "asset_id": key,
        "range": range_,
        "points": [{"at": iso(at), "price": price} for at, price in points],
        "change_percentage": change,
    }
