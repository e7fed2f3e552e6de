"""CoinGecko `/coins/markets` client: one HTTP call per refresh, strict mapping, back-off, circuit breaker.

Every number is parsed straight from the JSON text into Decimal (never through float). A coin with
bad data is skipped with a log line; a body that is not a JSON list (garbage, error object, truncated)
fails the whole call, and the caller keeps serving its last good prices.

Failure handling, all without a second HTTP call inside one refresh:
- back-off: after a failed call the next call is allowed only after `Retry-After` (429/503) or an
  exponential delay with jitter (`retry_at`); calls before that are refused locally;
- circuit breaker: `failure_threshold` consecutive failures open it for `reset_seconds`; then it
  half-opens and lets exactly one trial call through (success closes it, failure re-opens it).
The breaker state is a plain dict (`to_dict`/`restore`) so the market service can keep it in the
database, where every worker process sees it and a new refresher carries on after fail-over.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from cnop_app.domain.timeutil import iso, parse_iso, utcnow
from cnop_app.observability.logging import get_logger

_log = get_logger("coingecko")

MAX_PER_PAGE = 250
MAX_BODY_BYTES = 20 * 1024 * 1024
HTTP_TIMEOUT_MS = 10_000
MAX_RETRY_AFTER = timedelta(hours=1)
# Values at or above this overflow NUMERIC(38, 18) on PostgreSQL: treated as bad data.
MAX_MAGNITUDE = Decimal("1e20")
MAX_SPARKLINE_POINTS = 400
ASSET_ID_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

# Optional numeric fields: Asset column name -> (CoinGecko key(s), may be negative).
_NUMERIC_FIELDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "market_cap": (("market_cap",), False),
    "total_volume_24h": (("total_volume",), False),
    "high_24h": (("high_24h",), False),
    "low_24h": (("low_24h",), False),
    "price_change_24h": (("price_change_24h",), True),
    "price_change_percentage_24h": (("price_change_percentage_24h_in_currency", "price_change_percentage_24h"), True),
    "price_change_percentage_7d": (("price_change_percentage_7d_in_currency", "price_change_percentage_7d"), True),
    "price_change_percentage_30d": (("price_change_percentage_30d_in_currency", "price_change_percentage_30d"), True),
    "circulating_supply": (("circulating_supply",), False),
    "total_supply": (("total_supply",), False),
    "max_supply": (("max_supply",), False),
    "ath": (("ath",), False),
    "ath_change_percentage": (("ath_change_percentage",), True),
    "atl": (("atl",), False),
    "atl_change_percentage": (("atl_change_percentage",), True),
}
_DATE_FIELDS = {"ath_date": "ath_date", "atl_date": "atl_date", "last_updated": "last_updated"}


class FeedError(Exception):
    """A call failed (HTTP error, timeout, unusable body). Counts against the breaker."""

    def __init__(self, message: str, status_code: int | None = None, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after


class FeedUnavailable(Exception):
    """No call was made: the breaker is open or the back-off delay has not passed."""

    def __init__(self, reason: str, retry_at: datetime) -> None:
        super().__init__(f"{reason} until {retry_at.isoformat()}")
        self.reason = reason  # "breaker_open" | "backoff"
        self.retry_at = retry_at


@dataclass(frozen=True)
class MarketsPage:
    coins: list[dict[str, Any]]
    skipped: int
    status_code: int
    body_bytes: int


class CircuitBreaker:
    """closed -> (N consecutive failures) -> open -> (reset time) -> half_open -> one trial call."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_seconds: int = 60,
        backoff_base: timedelta = timedelta(seconds=2),
        backoff_max: timedelta = timedelta(seconds=60),
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset = timedelta(seconds=reset_seconds)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.state = CLOSED
        self.failures = 0
        self.opened_at: datetime | None = None
        self.retry_at: datetime | None = None
        self._trial_in_flight = False
        self._lock = threading.Lock()

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.current_state(),
            "failures": self.failures,
            "opened_at": iso(self.opened_at),
            "retry_at": iso(self.retry_at),
        }

    def restore(self, data: dict[str, Any] | None) -> None:
        """Continue from a saved state (another process may have made the previous calls)."""
        data = data or {}
        with self._lock:
            self._trial_in_flight = False
            state = data.get("state")
            self.state = state if state in (CLOSED, OPEN, HALF_OPEN) else CLOSED
            # A half-open trial that never reported back counts as still open.
            if self.state == HALF_OPEN:
                self.state = OPEN
            self.failures = max(0, int(data.get("failures") or 0))
            self.opened_at = parse_iso(data.get("opened_at"))
            self.retry_at = parse_iso(data.get("retry_at"))
            if self.state == OPEN and self.opened_at is None:
                self.opened_at = utcnow()

    def current_state(self, now: datetime | None = None) -> str:
        now = now or utcnow()
        if self.state == OPEN and self.opened_at is not None and now >= self.opened_at + self.reset:
            return HALF_OPEN
        return self.state

    def before_call(self, now: datetime | None = None) -> None:
        """Raise FeedUnavailable unless a call may go out now."""
        now = now or utcnow()
        with self._lock:
            state = self.current_state(now)
            if state == OPEN:
                assert self.opened_at is not None
                raise FeedUnavailable("breaker_open", self.opened_at + self.reset)
            if state == HALF_OPEN:
                if self._trial_in_flight:
                    raise FeedUnavailable("breaker_open", now + self.reset)
                self.state = HALF_OPEN
                self._trial_in_flight = True
                return
            if self.retry_at is not None and now < self.retry_at:
                raise FeedUnavailable("backoff", self.retry_at)

    def record_success(self) -> None:
        with self._lock:
            self.state = CLOSED
            self.failures = 0
            self.opened_at = None
            self.retry_at = None
            self._trial_in_flight = False

    def record_failure(self, retry_after: timedelta | None = None, now: datetime | None = None) -> None:
        now = now or utcnow()
        with self._lock:
            self.failures += 1
            was_trial = self._trial_in_flight or self.state == HALF_OPEN
            self._trial_in_flight = False
            # Exponential back-off with "equal jitter": half fixed, half random.
            exp = min(self.backoff_max, self.backoff_base * (2 ** min(self.failures - 1, 20)))
            delay = exp / 2 + exp / 2 * random.random()
            if retry_after is not None:
                delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
            self.retry_at = now + delay
            if was_trial or self.failures >= self.failure_threshold:
                self.state = OPEN
                self.opened_at = now
                # Retry-After longer than the reset time wins.
                if self.retry_at > now + self.reset:
                    self.opened_at = self.retry_at - self.reset
                self.retry_at = self.opened_at + self.reset

    def next_call_at(self, now: datetime | None = None) -> datetime | None:
        """When a call is allowed again (None = now)."""
        now = now or utcnow()
        state = self.current_state(now)
        if state == OPEN and self.opened_at is not None:
            return self.opened_at + self.reset
        if state == CLOSED and self.retry_at is not None and self.retry_at > now:
            return self.retry_at
        return None


# ---------------------------------------------------------------- mapping


def _decimal(value: Any) -> Decimal | None:
    """A finite Decimal from a JSON number (parsed as Decimal), else None. Booleans are not numbers."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        value = Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite():
        return None
    return value


def _optional_number(coin: dict[str, Any], keys: tuple[str, ...], signed: bool, field: str, coin_id: str) -> Any:
    for key in keys:
        if key not in coin or coin[key] is None:
            continue
        value = _decimal(coin[key])
        if value is None or (not signed and value < 0) or abs(value) >= MAX_MAGNITUDE:
            _log.warning("coin field ignored", extra={"coin": coin_id, "field": field, "value": repr(coin[key])[:40]})
            return None
        return value
    return None


def _sparkline(coin: dict[str, Any]) -> list[Decimal]:
    raw = coin.get("sparkline_in_7d")
    prices = raw.get("price") if isinstance(raw, dict) else None
    if not isinstance(prices, list):
        return []
    # Hot path (168 points x 250 coins): parse_body already made every number a Decimal.
    zero = Decimal(0)
    return [
        p for p in prices[-MAX_SPARKLINE_POINTS:] if type(p) is Decimal and p.is_finite() and zero <= p < MAX_MAGNITUDE
    ]


def map_coin(coin: Any) -> dict[str, Any] | None:
    """One `/coins/markets` item -> Asset field values, or None (logged) when it is unusable."""
    if not isinstance(coin, dict):
        _log.warning("coin skipped: not an object", extra={"value": repr(coin)[:60]})
        return None
    coin_id = coin.get("id")
    symbol = coin.get("symbol")
    name = coin.get("name")
    label = coin_id if isinstance(coin_id, str) else repr(coin_id)[:40]
    if not isinstance(coin_id, str) or not coin_id or not isinstance(symbol, str) or not isinstance(name, str):
        _log.warning("coin skipped: missing id, symbol or name", extra={"coin": label})
        return None
    asset_id = symbol.strip().upper()
    if not 1 <= len(asset_id) <= 10 or not set(asset_id) <= ASSET_ID_CHARS:
        _log.warning("coin skipped: symbol is not 1-10 letters or digits", extra={"coin": label, "symbol": symbol[:20]})
        return None
    price = _decimal(coin.get("current_price"))
    if price is None or price <= 0 or price >= MAX_MAGNITUDE:
        _log.warning("coin skipped: bad price", extra={"coin": label, "value": repr(coin.get("current_price"))[:40]})
        return None
    rank = _decimal(coin.get("market_cap_rank"))
    image = coin.get("image")
    mapped: dict[str, Any] = {
        "id": asset_id,
        "coingecko_id": coin_id[:100],
        "name": (name.strip() or asset_id)[:100],
        "image": image
        if isinstance(image, str) and image.startswith(("https://", "http://")) and len(image) <= 500
        else None,
        "price_usd": price,
        "market_cap_rank": int(rank)
        if rank is not None and rank == rank.to_integral_value() and 0 < rank < 10**9
        else None,
    }
    for field, (keys, signed) in _NUMERIC_FIELDS.items():
        mapped[field] = _optional_number(coin, keys, signed, field, label)
    for field, key in _DATE_FIELDS.items():
        mapped[field] = parse_iso(coin.get(key))
    mapped["sparkline_7d"] = _sparkline(coin)
    return mapped


def map_coins(payload: Any) -> tuple[list[dict[str, Any]], int]:
    """Map a whole response. Duplicate symbols keep the best-ranked coin. Returns (coins, skipped)."""
    if not isinstance(payload, list):
        raise FeedError(f"expected a JSON list of coins, got {type(payload).__name__}")
    by_id: dict[str, dict[str, Any]] = {}
    skipped = 0
    for raw in payload:
        coin = map_coin(raw)
        if coin is None:
            skipped += 1
            continue
        current = by_id.get(coin["id"])
        if current is not None:
            skipped += 1
            keep, drop = current, coin
            if (coin["market_cap_rank"] or 10**9) < (current["market_cap_rank"] or 10**9):
                keep, drop = coin, current
            by_id[coin["id"]] = keep
            _log.warning(
                "coin skipped: duplicate symbol",
                extra={"symbol": coin["id"], "kept": keep["coingecko_id"], "dropped": drop["coingecko_id"]},
            )
            continue
        by_id[coin["id"]] = coin
    return list(by_id.values()), skipped


def parse_body(body: bytes) -> Any:
    """JSON with every number as Decimal; anything else is a failed call."""
    try:
        return json.loads(body, parse_float=Decimal, parse_int=Decimal, parse_constant=lambda _c: None)
    except (ValueError, InvalidOperation, RecursionError) as exc:
        raise FeedError(f"response is not valid JSON ({type(exc).__name__})") from exc


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(timedelta(0), when - now)


# ---------------------------------------------------------------- client


class CoinGeckoClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        api_key_type: str = "demo",
        breaker: CircuitBreaker | None = None,
        timeout_ms: int = HTTP_TIMEOUT_MS,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "cnop/0.1"}
        if api_key:
            headers["x-cg-pro-api-key" if api_key_type == "pro" else "x-cg-demo-api-key"] = api_key
        self.base_url = base_url.rstrip("/")
        self.breaker = breaker or CircuitBreaker()
        self.calls = 0
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=httpx.Timeout(timeout_ms / 1000), follow_redirects=False
        )

    def close(self) -> None:
        self._http.close()

    def fetch_markets(self, per_page: int = 100) -> MarketsPage:
        """ONE GET /coins/markets. Raises FeedUnavailable (no call made) or FeedError (call failed)."""
        self.breaker.before_call()
        try:
            page = self._call(max(1, min(per_page, MAX_PER_PAGE)))
        except FeedError as exc:
            self.breaker.record_failure(exc.retry_after)
            _log.warning("coingecko call failed", extra={"error": str(exc), "status": exc.status_code})
            raise
        except BaseException:
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        return page

    def _call(self, per_page: int) -> MarketsPage:
        params = {
            "vs_currency": "usd",
            "order": "market_cap_desc",
            "per_page": str(per_page),
            "page": "1",
            "sparkline": "true",
            "price_change_percentage": "24h,7d,30d",
            "precision": "full",
        }
        self.calls += 1
        try:
            with self._http.stream("GET", "/coins/markets", params=params) as response:
                status = response.status_code
                if status != 200:
                    retry_after = _retry_after(response.headers.get("retry-after"), utcnow())
                    raise FeedError(f"HTTP {status} from /coins/markets", status, retry_after)
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise FeedError(f"response larger than {MAX_BODY_BYTES} bytes", status)
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise FeedError(f"{type(exc).__name__}: {exc}"[:300]) from exc
        body = b"".join(chunks)
        coins, skipped = map_coins(parse_body(body))
        if not coins:
            raise FeedError(f"no usable coins in the response ({skipped} skipped)", status)
        return MarketsPage(coins=coins, skipped=skipped, status_code=status, body_bytes=len(body))
