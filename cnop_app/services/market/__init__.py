"""Market data: the asset catalogue, price refreshes from the configured source, history and status.

Sources (`CNOP_MARKET_SOURCE`): `coingecko` (one `/coins/markets` call per refresh), `snapshot`
(the bundled `assets/market_snapshot.json`, static), `simulated` (a seeded random walk around the
snapshot, one step per refresh). Every source goes through the same mapper (`coingecko.map_coins`).

One concern per module:
- `status`: the shared market status record (version, last attempt, breaker) and `market_status()`;
- `price_cache`: the in-process latest prices, invalidated by the shared version;
- `store`: writing one batch of prices (assets, ticks, outbox, status) in one transaction;
- `snapshot`: the bundled snapshot and seeding an empty catalogue from it;
- `simulator`: the simulated random-walk market;
- `refresh`: one refresh run (fetch, store or record the failure, breaker bookkeeping, metrics);
- `catalogue`: the asset list, detail and price history reads.

Callers use the names below: `from cnop_app.services import market; market.refresh_prices()`.
"""

from __future__ import annotations

from cnop_app.services.market.catalogue import (
    MAX_LIST_LIMIT,
    asset_detail,
    asset_history,
    asset_summary,
    get_asset,
    list_assets,
    market_table,
)
from cnop_app.services.market.price_cache import clear_cache, latest_price, latest_prices, reload_prices_if_changed
from cnop_app.services.market.refresh import RefreshResult, refresh_prices
from cnop_app.services.market.snapshot import ensure_catalogue, seed_from_snapshot, snapshot_coins
from cnop_app.services.market.status import STATUS_KEY, load_status, market_status, market_version, status_text

__all__ = [
    "MAX_LIST_LIMIT",
    "STATUS_KEY",
    "RefreshResult",
    "asset_detail",
    "asset_history",
    "asset_summary",
    "clear_cache",
    "ensure_catalogue",
    "get_asset",
    "latest_price",
    "latest_prices",
    "list_assets",
    "load_status",
    "market_status",
    "market_table",
    "market_version",
    "status_text",
    "refresh_prices",
    "reload_prices_if_changed",
    "seed_from_snapshot",
    "snapshot_coins",
]
