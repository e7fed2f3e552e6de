"""Latest prices per process, kept in memory and invalidated by the shared market version.

A refresh in this process puts its prices straight in (`remember`); a refresh in another process is
noticed by the version check, done at most every CACHE_CHECK_SECONDS (or at once by the scheduler's
watcher through `reload_prices_if_changed`). Switching databases (tests) empties it.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from sqlmodel import select

from cnop_app.config import get_settings
from cnop_app.db import read_session
from cnop_app.models import Asset
from cnop_app.services.market.status import read_status, version_of

CACHE_CHECK_SECONDS = 2


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
            version = version_of(read_status(session))
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


def remember(prices: dict[str, Decimal], version: int) -> None:
    """Prices this process just stored (committed) under `version`."""
    _cache.put(prices, version)


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
