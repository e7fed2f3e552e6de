"""Reading orders and fills: one user's, newest first, paged."""

from __future__ import annotations

from sqlmodel import select

from cnop_app.db import read_session
from cnop_app.domain.enums import OrderStatus
from cnop_app.domain.errors import NotFound, ValidationFailed
from cnop_app.domain.paging import check_page
from cnop_app.models import Asset, AssetTransaction, Order
from cnop_app.services import validation
from cnop_app.services.trading.requests import ORDER_TYPES, STATUSES
from cnop_app.services.trading.views import FillView, OrderView, to_fill_view, to_view


def get_order(username: str, order_id: str) -> OrderView:
    with read_session() as session:
        order = session.get(Order, order_id)
    if order is None or order.username != username:
        raise NotFound("Order not found")
    return to_view(order)


def list_orders(
    username: str,
    asset_id: str | None = None,
    order_type: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[OrderView], bool]:
    """The user's orders newest first, and whether more follow."""
    check_page(limit, offset)
    query = select(Order).where(Order.username == username)
    if asset_id:
        query = query.where(Order.asset_id == validation.asset_id(asset_id))
    if order_type:
        if order_type not in ORDER_TYPES:
            raise ValidationFailed("order_type must be one of " + ", ".join(ORDER_TYPES), "order_type")
        query = query.where(Order.order_type == order_type)
    if status:
        if status not in STATUSES:
            raise ValidationFailed("status must be one of " + ", ".join(STATUSES), "status")
        query = query.where(Order.status == status)
    query = query.order_by(Order.created_at.desc(), Order.order_id.desc())  # type: ignore[attr-defined]
    with read_session() as session:
        rows = session.exec(query.offset(offset).limit(limit + 1)).all()
    return [to_view(o) for o in rows[:limit]], len(rows) > limit


def list_open_orders(username: str) -> list[OrderView]:
    """Pending orders, oldest first (the order ticket's open-orders list)."""
    with read_session() as session:
        rows = session.exec(
            select(Order)
            .where(Order.username == username, Order.status == OrderStatus.PENDING)
            .order_by(Order.created_at, Order.order_id)  # type: ignore[arg-type]
        ).all()
    return [to_view(o) for o in rows]


def list_asset_transactions(
    username: str, asset_id: str, limit: int = 50, offset: int = 0
) -> tuple[list[FillView], bool]:
    """The user's fills of one asset, newest first. Unknown asset: NotFound."""
    check_page(limit, offset)
    asset_id = validation.asset_id(asset_id)
    with read_session() as session:
        if session.get(Asset, asset_id) is None:
            raise NotFound(f"Asset {asset_id} not found")
        rows = session.exec(
            select(AssetTransaction)
            .where(AssetTransaction.username == username, AssetTransaction.asset_id == asset_id)
            .order_by(AssetTransaction.id.desc())  # type: ignore[union-attr]
            .offset(offset)
            .limit(limit + 1)
        ).all()
    return [to_fill_view(t) for t in rows[:limit]], len(rows) > limit
