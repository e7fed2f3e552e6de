"""Catalogue reads: the asset list, one asset's detail and its price history, in their API shapes.

Numbers stay Decimal; the API renders them as JSON numbers. Each asset says how old its price is and
whether it is stale (the feed is stale, or the last good refresh did not include it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from cnop_app.config import get_settings
from cnop_app.db import read_session
from cnop_app.domain.errors import NotFound, ValidationFailed
from cnop_app.domain.ranges import DEFAULT_RANGE, parse_range
from cnop_app.domain.timeutil import iso, parse_iso, utcnow
from cnop_app.models import Asset, PriceTick
from cnop_app.read_path import read_connection
from cnop_app.services import validation
from cnop_app.services.market.status import is_stale, load_status
from cnop_app.services.market.store import sparkline_values

MAX_HISTORY_POINTS = 360
MAX_LIST_LIMIT = 250
PERCENT_STEP = Decimal("0.000001")


def change_percentage(start: Decimal, end: Decimal) -> Decimal:
    """The change from `start` (> 0) to `end` in percent, to 6 decimals."""
    return ((end - start) / start * 100).quantize(PERCENT_STEP)


_ASSETS = sa_select(Asset.__table__)  # type: ignore[attr-defined]
# What `asset_summary` (and `_staleness`) read, and the sparkline.
_TABLE_COLUMNS = (
    "id",
    "name",
    "description",
    "category",
    "price_usd",
    "is_active",
    "image",
    "market_cap_rank",
    "price_change_percentage_24h",
    "market_cap",
    "total_volume_24h",
    "price_change_percentage_7d",
    "last_updated",
    "updated_at",
    "source",
    "sparkline_7d",
)
_TABLE_ASSETS = sa_select(*(Asset.__table__.c[name] for name in _TABLE_COLUMNS))  # type: ignore[attr-defined]
_ACTIVE = col(Asset.is_active).is_(True)


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


def _status_context() -> dict[str, Any]:
    status = load_status()
    now = utcnow()
    return {"status": status, "stale": is_stale(get_settings(), status, now), "now": now}


def asset_summary(asset: Asset, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """A list item. Numbers are Decimal; the API renders them as JSON numbers."""
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
            "sparkline_7d": sparkline_values(asset.sparkline_7d, asset.id),
            "coingecko_id": asset.coingecko_id,
        }
    )
    return data


def list_assets(active_only: bool = True, limit: int = 50) -> dict[str, Any]:
    """`{"data": [...], "total_count", "active_count"}` ordered by market-cap rank."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIST_LIMIT}", "limit")
    context = _status_context()
    with read_session() as session:
        query = select(Asset)
        if active_only:
            query = query.where(_ACTIVE)
        rows = session.exec(query.order_by(*_rank_order()).limit(limit)).all()
        total = session.exec(select(func.count()).select_from(Asset)).one()
        active = session.exec(select(func.count()).select_from(Asset).where(_ACTIVE)).one()
    return {"data": [asset_summary(a, context) for a in rows], "total_count": total, "active_count": active}


def market_table() -> list[dict[str, Any]]:
    """Every asset as a list item (`asset_summary`) plus its 7-day sparkline, ordered by rank: what the
    market table shows. Each live push's new table starts from this read of the whole catalogue, so
    it reads only these columns (a third of the numbers to decode, none of the detail fields)."""
    context = _status_context()
    with read_connection() as conn:
        rows = conn.execute(_TABLE_ASSETS.order_by(*_rank_order())).all()
    return [
        {**asset_summary(a, context), "sparkline_7d": sparkline_values(a.sparkline_7d, a.id)}  # type: ignore[arg-type]
        for a in rows
    ]


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


def asset_history(asset_id: object, range_: object = DEFAULT_RANGE) -> dict[str, Any]:
    """Price points for charts: `{"asset_id", "range", "points": [{"at", "price"}], "change_percentage"}`."""
    key = validation.asset_id(asset_id)
    span = parse_range(range_)
    since = utcnow() - span
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
        change = change_percentage(points[0][1], points[-1][1])
    return {
        "asset_id": key,
        "range": range_,
        "points": [{"at": iso(at), "price": price} for at, price in points],
        "change_percentage": change,
    }
