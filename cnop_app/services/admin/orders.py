"""Every user's orders, filtered and paged, and cancelling one on the user's behalf."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select

from cnop_app.db import UnitOfWork, read_session, unit_of_work
from cnop_app.domain import admin as rules
from cnop_app.domain.enums import OrderStatus
from cnop_app.domain.errors import NotFound, ValidationFailed
from cnop_app.domain.paging import check_page
from cnop_app.models import Order
from cnop_app.services import trading, validation
from cnop_app.services.admin.context import AdminContext, record
from cnop_app.services.trading.views import to_view


@dataclass(frozen=True)
class OrderPage:
    rows: list[trading.OrderView]
    total: int
    limit: int
    offset: int


def list_orders(
    ctx: AdminContext,
    *,
    username: object = None,
    asset_id: object = None,
    order_type: object = None,
    status: object = None,
    since: object = None,
    until: object = None,
    limit: int = 50,
    offset: int = 0,
) -> OrderPage:
    """Orders of every user, newest first. Filters: user, asset, type, status, creation period
    (`since` inclusive, `until` exclusive; a date alone for `until` includes that day)."""
    check_page(limit, offset)
    conditions = []
    if username:
        conditions.append(Order.username == validation.username(username))
    if asset_id:
        conditions.append(Order.asset_id == validation.asset_id(asset_id))
    if order_type:
        if order_type not in trading.ORDER_TYPES:
            raise ValidationFailed("order_type must be one of " + ", ".join(trading.ORDER_TYPES), "order_type")
        conditions.append(Order.order_type == order_type)
    if status:
        if status not in trading.STATUSES:
            raise ValidationFailed("status must be one of " + ", ".join(trading.STATUSES), "status")
        conditions.append(Order.status == status)
    start, end = rules.parse_period(since, until)
    if start is not None:
        conditions.append(col(Order.created_at) >= start)
    if end is not None:
        conditions.append(col(Order.created_at) < end)
    with read_session() as session:
        total = session.exec(select(func.count()).select_from(Order).where(*conditions)).one()
        rows = session.exec(
            select(Order)
            .where(*conditions)
            .order_by(col(Order.created_at).desc(), col(Order.order_id).desc())
            .offset(offset)
            .limit(limit)
        ).all()
    return OrderPage([to_view(o) for o in rows], int(total), limit, offset)


def cancel_order(
    ctx: AdminContext, order_id: object, reason: object, *, uow: UnitOfWork | None = None
) -> trading.OrderView:
    """Cancel a user's pending order and release its hold, exactly as the user's own cancel does,
    with the audit row in the same transaction. Not pending: Conflict (409)."""
    why = rules.parse_reason(reason)
    if not isinstance(order_id, str) or not 1 <= len(order_id) <= 36:
        raise NotFound("Order not found")
    with read_session() as session:
        owner = session.exec(select(Order.username).where(Order.order_id == order_id)).first()
    if owner is None:
        raise NotFound("Order not found")
    with unit_of_work(uow) as work:
        view = trading.cancel_order(owner, order_id, uow=work)
        record(
            work.session,
            ctx,
            "admin_order_cancelled",
            user=owner,
            target=order_id,
            reason=why,
            before={"status": OrderStatus.PENDING.value},
            after={"status": view.status},
            asset_id=view.asset_id,
            order_type=view.order_type,
        )
    return view
