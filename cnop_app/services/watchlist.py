"""Watchlist: the assets a user starred (market table, asset page), shown live on the dashboard.

A preference, not money: it is not part of the DynamoDB mirror's layout and writes no outbox rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select

from cnop_app.db import UnitOfWork, read_session, write_session
from cnop_app.domain.errors import BusinessRuleViolation, NotFound
from cnop_app.domain.timeutil import utcnow
from cnop_app.models import Asset, WatchlistItem
from cnop_app.services import validation

MAX_ITEMS = 100


@dataclass(frozen=True)
class WatchView:
    asset_id: str
    name: str
    image: str | None
    is_active: bool
    price_usd: Decimal | None
    price_change_percentage_24h: Decimal | None
    added_at: datetime


def list_items(username: str) -> list[WatchView]:
    """The starred assets, oldest star first, with their stored price and 24h change."""
    with read_session() as session:
        rows = session.exec(
            select(WatchlistItem, Asset)
            .join(Asset, col(Asset.id) == col(WatchlistItem.asset_id))
            .where(WatchlistItem.username == username)
            .order_by(col(WatchlistItem.created_at), col(WatchlistItem.asset_id))
        ).all()
    return [
        WatchView(
            asset_id=asset.id,
            name=asset.name,
            image=asset.image,
            is_active=asset.is_active,
            price_usd=asset.price_usd,
            price_change_percentage_24h=asset.price_change_percentage_24h,
            added_at=item.created_at,
        )
        for item, asset in rows
    ]


def asset_ids(username: str) -> set[str]:
    """The starred asset ids (cheap: for star toggles in tables)."""
    with read_session() as session:
        return set(session.exec(select(WatchlistItem.asset_id).where(WatchlistItem.username == username)).all())


def add(username: str, asset_id: object, *, uow: UnitOfWork | None = None) -> bool:
    """Star an asset (unknown: NotFound). True when added, False when it was already starred.
    At most 100 stars per user."""
    key = validation.asset_id(asset_id)
    with write_session(uow) as session:
        if session.get(Asset, key) is None:
            raise NotFound(f"Asset {key} not found")
        if session.get(WatchlistItem, (username, key)) is not None:
            return False
        count = session.exec(
            select(func.count()).select_from(WatchlistItem).where(WatchlistItem.username == username)
        ).one()
        if count >= MAX_ITEMS:
            raise BusinessRuleViolation(f"A watchlist holds at most {MAX_ITEMS} assets", "asset_id")
        try:
            with session.begin_nested():
                session.add(WatchlistItem(username=username, asset_id=key, created_at=utcnow()))
        except IntegrityError:  # starred twice at once (PostgreSQL): the other request added it
            return False
    return True


def remove(username: str, asset_id: object, *, uow: UnitOfWork | None = None) -> bool:
    """Unstar an asset. True when it was starred."""
    key = validation.asset_id(asset_id)
    with write_session(uow) as session:
        result = session.execute(
            delete(WatchlistItem).where(col(WatchlistItem.username) == username, col(WatchlistItem.asset_id) == key)
        )
        return bool(result.rowcount)
