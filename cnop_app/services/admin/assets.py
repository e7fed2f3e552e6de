"""The catalogue as the console shows it, trading on/off per asset, and "refresh prices now".

Trading off (`is_active` false): new orders for the asset are refused ("Asset X is not available for
trading"). Its open limit orders stay pending and do not fill while it is off; they still expire at
their `expires_at`, their owners (or an admin) can cancel them, and once trading is back on they
fill at the next price refresh that crosses their limit. Holdings keep their value at the stored price.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func
from sqlmodel import Session, col, select

from cnop_app.config import get_settings
from cnop_app.db import UnitOfWork, read_session, unit_of_work
from cnop_app.domain import admin as rules
from cnop_app.domain.enums import OrderStatus
from cnop_app.domain.errors import NotFound, ValidationFailed
from cnop_app.domain.timeutil import utcnow
from cnop_app.models import Asset, KeyValue, Order
from cnop_app.services import market, outbox, validation
from cnop_app.services.admin.context import AdminContext, record
from cnop_app.services.market.status import STATUS_KEY, is_stale, read_status, version_of, write_status


@dataclass(frozen=True)
class AdminAsset:
    asset_id: str
    name: str
    image: str | None
    category: str
    is_active: bool
    price_usd: Decimal | None
    market_cap_rank: int | None
    source: str | None
    last_updated: datetime | None
    price_age_seconds: int | None
    stale: bool
    open_orders: int  # pending limit orders of every user


@dataclass(frozen=True)
class AssetChange:
    asset: AdminAsset
    changed: bool


def _open_orders(session: Session) -> dict[str, int]:
    rows = session.exec(
        select(Order.asset_id, func.count()).where(Order.status == OrderStatus.PENDING).group_by(Order.asset_id)
    ).all()
    return {asset_id: int(count) for asset_id, count in rows}


def _view(asset: Asset, summary: dict, open_orders: int) -> AdminAsset:
    return AdminAsset(
        asset_id=asset.id,
        name=asset.name,
        image=asset.image,
        category=asset.category,
        is_active=asset.is_active,
        price_usd=asset.price_usd,
        market_cap_rank=asset.market_cap_rank,
        source=asset.source,
        last_updated=asset.last_updated,
        price_age_seconds=summary["price_age_seconds"],
        stale=summary["stale"],
        open_orders=open_orders,
    )


def list_assets(ctx: AdminContext, *, active: bool | None = None) -> list[AdminAsset]:
    """Every asset (or only active / inactive ones) by market-cap rank, with how old its price is,
    whether it is stale (`market.asset_summary`'s rule) and how many open orders it has."""
    status = market.load_status()
    now = utcnow()
    context = {"status": status, "stale": is_stale(get_settings(), status, now), "now": now}
    with read_session() as session:
        query = select(Asset)
        if active is not None:
            query = query.where(col(Asset.is_active).is_(active))
        rows = session.exec(
            query.order_by(col(Asset.market_cap_rank).is_(None), col(Asset.market_cap_rank), col(Asset.id))
        ).all()
        counts = _open_orders(session)
    return [_view(a, market.asset_summary(a, context), counts.get(a.id, 0)) for a in rows]


def _bump_market_version(session: Session) -> None:
    """Every process rebuilds its market rows when the shared version moves (within about a second),
    so the change shows everywhere without waiting for the next refresh. The status row is locked:
    a refresh committing meanwhile is not overwritten."""
    session.get(KeyValue, STATUS_KEY, with_for_update=True)
    status = read_status(session)
    status["version"] = version_of(status) + 1
    write_status(session, status)


def set_trading(
    ctx: AdminContext, asset_id: object, is_active: object, reason: object, *, uow: UnitOfWork | None = None
) -> AssetChange:
    """Turn trading in one asset on or off (see the module docstring for its open orders). The same
    state again changes and records nothing (`changed` False)."""
    key = validation.asset_id(asset_id)
    if not isinstance(is_active, bool):
        raise ValidationFailed("is_active must be true or false", "is_active")
    why = rules.parse_reason(reason)
    with unit_of_work(uow) as work:
        session = work.session
        asset = session.exec(select(Asset).where(Asset.id == key).with_for_update()).first()
        if asset is None:
            raise NotFound(f"Asset {key} not found")
        changed = asset.is_active != is_active
        if changed:
            asset.is_active = is_active
            asset.updated_at = utcnow()
            session.add(asset)
            session.flush()
            outbox.emit(session, "asset", asset.id, asset)
            _bump_market_version(session)
            pending = _open_orders(session).get(key, 0)
            record(
                session,
                ctx,
                "admin_asset_enabled" if is_active else "admin_asset_disabled",
                user=None,
                target=key,
                reason=why,
                before={"is_active": not is_active},
                after={"is_active": is_active},
                open_orders=pending,
            )
        counts = _open_orders(session)
        view = _view(asset, market.asset_summary(asset), counts.get(key, 0))
    return AssetChange(view, changed)


def refresh_prices_now(
    ctx: AdminContext, reason: object, refresh: Callable[[], market.RefreshResult]
) -> market.RefreshResult:
    """Run one price refresh now through `refresh` (the adapter passes `cnop_app.scheduler.run_refresh_once`,
    which honours the refresher lease, answering "busy" while another refresh runs, and the circuit
    breaker / back-off). The refresh commits its own transaction; the audit row records its outcome
    once it is known."""
    why = rules.parse_reason(reason)
    result = refresh()
    with unit_of_work() as work:
        record(
            work.session,
            ctx,
            "admin_prices_refreshed",
            user=None,
            target="market",
            reason=why,
            before={},
            after={"outcome": result.outcome, "stored": result.stored, "version": result.version},
            error=result.error,
        )
    return result
