"""The limit-order matcher and expiry, run after every price refresh."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from cnop_app.db import read_session, write_session
from cnop_app.domain import trading as rules
from cnop_app.domain.enums import OrderStatus
from cnop_app.models import Account, Asset, Order, utcnow
from cnop_app.observability.logging import get_logger
from cnop_app.services.accounts import lock_account
from cnop_app.services.trading.execution import fill, release

_log = get_logger("trading")


def _pending_limit_orders(session: Session) -> list[Any]:
    """(order_id, order_type, limit_price, asset_id) of each pending order, oldest first: plain rows, as
    this runs before every live push and most resting orders are not crossed (no ORM object each)."""
    return list(
        session.exec(
            select(Order.order_id, Order.order_type, Order.limit_price, Order.asset_id)
            .where(Order.status == OrderStatus.PENDING)
            .order_by(Order.created_at, Order.order_id)  # type: ignore[arg-type]
        ).all()
    )


def _locked_pending(session: Session, order_id: str) -> tuple[Account, Order] | None:
    """The order and its owner's account, locked, if the order is still pending once locked."""
    order = session.get(Order, order_id)
    if order is None or order.status != OrderStatus.PENDING:
        return None
    account = lock_account(session, order.username)
    session.refresh(order)  # re-read under the lock
    return (account, order) if order.status == OrderStatus.PENDING else None


def _expire_one(order_id: str, now: datetime) -> bool:
    with write_session() as session:
        locked = _locked_pending(session, order_id)
        if locked is None or not rules.is_expired(locked[1].expires_at, now):
            return False
        release(session, *locked, OrderStatus.EXPIRED, now)
    return True


def expire_orders(now: datetime | None = None) -> int:
    """End every pending order past its `expires_at` as `expired`, releasing its hold."""
    now = now or utcnow()
    with read_session() as session:
        due = session.exec(
            select(Order.order_id)
            .where(Order.status == OrderStatus.PENDING, Order.expires_at.is_not(None), Order.expires_at <= now)  # type: ignore[union-attr]
            .order_by(Order.created_at, Order.order_id)  # type: ignore[arg-type]
        ).all()
    count = 0
    for order_id in due:
        try:
            count += _expire_one(order_id, now)
        except Exception:  # one bad row must not stop the others; the log has it
            _log.exception("expiring order failed", extra={"order_id": order_id})
    return count


def _match_one(order_id: str, now: datetime) -> bool:
    with write_session() as session:
        locked = _locked_pending(session, order_id)
        if locked is None:
            return False
        account, order = locked
        if rules.is_expired(order.expires_at, now):
            release(session, account, order, OrderStatus.EXPIRED, now)
            return False
        asset = session.get(Asset, order.asset_id)
        if (
            asset is None
            or not asset.is_active
            or not rules.crossed(order.order_type, order.limit_price, asset.price_usd)
        ):
            return False
        assert order.limit_price is not None
        fill(session, account, order, order.limit_price, now)
    return True


def match_limit_orders(now: datetime | None = None) -> int:
    """Fill every pending limit order whose limit the stored price crossed, at its limit price, oldest
    first; expire those past `expires_at`. Call after each price refresh. Returns the number filled."""
    now = now or utcnow()
    expire_orders(now)
    with read_session() as session:
        pending = _pending_limit_orders(session)
        prices = dict(session.exec(select(Asset.id, Asset.price_usd).where(Asset.is_active)).all()) if pending else {}
    filled = 0
    for order in pending:
        if not rules.crossed(order.order_type, order.limit_price, prices.get(order.asset_id)):
            continue
        try:
            filled += _match_one(order.order_id, now)
        except Exception:  # keep matching the others; the failed order stays pending
            _log.exception("filling limit order failed", extra={"order_id": order.order_id})
    return filled
