"""The simulated market: a seeded random walk around the snapshot prices, one step per refresh.

Step n with seed s always gives the same prices for the same previous prices, so runs reproduce.
Decimal math only; the derived fields (24h/7d/30d change, high/low, market cap, ATH/ATL, sparkline)
move with the price so every page stays consistent.
"""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import select

from cnop_app.config import Settings
from cnop_app.db import read_session
from cnop_app.domain.timeutil import utcnow
from cnop_app.models import Asset
from cnop_app.services.market.catalogue import change_percentage
from cnop_app.services.market.snapshot import snapshot_coins
from cnop_app.services.market.store import STABLECOINS

# Mean reversion towards the snapshot price and per-step volatility.
SIM_REVERSION = Decimal("0.05")
SIM_SIGMA = Decimal("0.006")
SIM_SIGMA_STABLE = Decimal("0.0002")
SIM_MIN_RATIO, SIM_MAX_RATIO = Decimal("0.5"), Decimal("2")


def _sig(value: Decimal, digits: int = 10) -> Decimal:
    """Round to `digits` significant digits (at most 18 decimals, the PostgreSQL column scale)."""
    if value == 0:
        return Decimal(0)
    exponent = max(value.adjusted() - digits + 1, -18)
    return value.quantize(Decimal(1).scaleb(exponent)).normalize()


def simulate(settings: Settings, step: int) -> list[dict[str, Any]]:
    """One step of a seeded random walk that reverts towards the snapshot prices (Decimal math only)."""
    now = utcnow()
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
        move_coin(coin, _sig(base * ratio), now)
    return coins


def move_coin(coin: dict[str, Any], price: Decimal, now: datetime) -> None:
    """Set a new price on a snapshot coin and keep the derived fields consistent with it."""
    base = coin["price_usd"]
    open_24h = base - coin["price_change_24h"] if coin.get("price_change_24h") is not None else base
    if open_24h > 0:
        coin["price_change_24h"] = _sig(price - open_24h)
        coin["price_change_percentage_24h"] = change_percentage(open_24h, price)
    for key in ("price_change_percentage_7d", "price_change_percentage_30d"):
        if coin.get(key) is not None and coin[key] > -100:
            opened = base / (1 + coin[key] / 100)
            coin[key] = change_percentage(opened, price)
    coin["high_24h"] = max(coin.get("high_24h") or price, price)
    coin["low_24h"] = min(coin.get("low_24h") or price, price)
    if coin.get("circulating_supply"):
        coin["market_cap"] = (price * coin["circulating_supply"]).quantize(Decimal(1))
    elif coin.get("market_cap") is not None:
        coin["market_cap"] = (coin["market_cap"] * price / base).quantize(Decimal(1))
    if coin.get("ath") is not None:
        if price > coin["ath"]:
            coin["ath"], coin["ath_date"] = price, now
        coin["ath_change_percentage"] = change_percentage(coin["ath"], price)
    if coin.get("atl"):
        if price < coin["atl"]:
            coin["atl"], coin["atl_date"] = price, now
        coin["atl_change_percentage"] = change_percentage(coin["atl"], price)
    if coin.get("sparkline_7d"):
        coin["sparkline_7d"] = [*coin["sparkline_7d"][:-1], price]
    coin["price_usd"] = price
    coin["last_updated"] = now
