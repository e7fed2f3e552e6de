"""Placing and cancelling orders: one write transaction each, with the account row locked.

A retry with the same `client_order_id` or `Idempotency-Key` returns the original order unchanged.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from cnop_app.config import get_settings
from cnop_app.db import UnitOfWork, read_session, unit_of_work, write_session
from cnop_app.domain import trading as rules
from cnop_app.domain.cash import require_funds
from cnop_app.domain.enums import OrderStatus
from cnop_app.domain.errors import BusinessRuleViolation, Conflict, DomainError, NotFound, ValidationFailed
from cnop_app.domain.ids import new_id
from cnop_app.models import Asset, Holding, Order, utcnow
from cnop_app.observability.metrics import ORDERS
from cnop_app.services import idempotency, outbox
from cnop_app.services.accounts import lock_account
from cnop_app.services.trading.execution import (
    Listing,
    emit_holding,
    lock_cash,
    plan_fill,
    quote_fill,
    read_listing_and_position,
    release,
    require_free_quantity,
    write_fill,
)
from cnop_app.services.trading.requests import ORDER_TYPES, OrderRequest, parse_order_request
from cnop_app.services.trading.views import OrderView, order_view, to_view


def _same_request(order: Order, req: OrderRequest) -> bool:
    return (
        order.order_type == req.order_type
        and order.asset_id == req.asset_id
        and order.quantity == req.quantity
        and order.limit_price == req.limit_price
    )


def _prior_order(session: Session, username: str, req: OrderRequest, key: str | None, req_hash: str) -> Order | None:
    if req.client_order_id is not None:
        prior = session.exec(
            select(Order).where(Order.username == username, Order.client_order_id == req.client_order_id)
        ).first()
        if prior is not None:
            if not _same_request(prior, req):
                raise Conflict("client_order_id was already used for a different order", "client_order_id")
            return prior
    if key is not None:
        record = idempotency.lookup(session, username, "order", key, req_hash)
        if record is not None:
            prior = session.get(Order, record["order_id"])
            if prior is not None:
                return prior
    return None


_assets = Asset.__table__  # type: ignore[attr-defined]
_SELECT_LISTING = select(_assets.c.is_active, _assets.c.price_usd).where(_assets.c.id == bindparam("asset_id"))


def _tradeable_price(session: Session, asset_id: str) -> Decimal | None:
    """The stored price of an active asset. Reads two columns, not the whole row (sparkline, supplies...)
    that the order does not need: this runs inside the account lock on every order."""
    row = session.connection().execute(_SELECT_LISTING, {"asset_id": asset_id}).first()
    return _require_tradeable(Listing(*row) if row is not None else None, asset_id)


def _require_tradeable(listing: Listing | None, asset_id: str) -> Decimal | None:
    """The listing's price if it may be traded: unknown asset 422, delisted asset refused."""
    if listing is None:
        raise ValidationFailed(f"Unknown asset {asset_id}", "asset_id")
    if not listing.is_active:
        raise BusinessRuleViolation(f"Asset {asset_id} is not available for trading", "asset_id")
    return listing.price


def _check_value(quantity: Decimal, price: Decimal) -> None:
    rules.require_order_value(rules.order_value(quantity, price), get_settings().max_order_value)


def place_order(
    username: str, data: dict[str, Any], idempotency_key: str | None = None, *, uow: UnitOfWork | None = None
) -> OrderView:
    """Validate and place one order. Market orders fill now; limit orders rest as `pending` with a hold.

    A retry with the same `client_order_id` or `Idempotency-Key` returns the original order unchanged.
    Counted in `cnop_orders_total` once committed (UI and API alike); refusals count as `rejected`.
    """
    now = utcnow()
    try:
        req = parse_order_request(data, now)
        key = idempotency.check_key(idempotency_key)
        req_hash = idempotency.request_hash(req.fingerprint())
        view = _place(username, req, key, req_hash, now, uow)
    except DomainError:
        ORDERS.labels(_type_label(data.get("order_type")), OrderStatus.REJECTED).inc()
        raise
    return view


def _type_label(value: object) -> str:
    """A bounded metric label for whatever order type the client sent."""
    text = value.strip().lower() if isinstance(value, str) else ""
    return text if text in ORDER_TYPES else "invalid"


def _place(
    username: str, req: OrderRequest, key: str | None, req_hash: str, now: datetime, uow: UnitOfWork | None
) -> OrderView:
    try:
        with unit_of_work(uow) as work:
            session = work.session
            place = _place_limit if req.is_limit else _place_market
            view, placed = place(session, username, req, key, req_hash, now)
            if placed:  # a retry returns the first order and is not counted again
                work.on_commit(lambda: ORDERS.labels(view.order_type, view.status).inc())
    except IntegrityError:
        # Only reachable if two requests with one client_order_id raced past the account lock.
        with read_session() as session:
            prior = _prior_order(session, username, req, None, req_hash)
        if prior is None:
            raise
        return to_view(prior)
    return view


def _new_order(username: str, req: OrderRequest, now: datetime) -> dict[str, Any]:
    """The order row's column values before it executes."""
    return {
        "order_id": new_id(),
        "client_order_id": req.client_order_id,
        "username": username,
        "asset_id": req.asset_id,
        "order_type": req.order_type,
        "status": OrderStatus.PENDING,
        "quantity": req.quantity,
        "limit_price": req.limit_price,
        "executed_price": None,
        "total_amount": Decimal(0),
        "fee": Decimal(0),
        "held_amount": Decimal(0),
        "expires_at": req.expires_at,
        "reject_reason": None,
        "created_at": now,
        "updated_at": now,
        "completed_at": None,
    }


def _place_market(
    session: Session, username: str, req: OrderRequest, key: str | None, req_hash: str, now: datetime
) -> tuple[OrderView, bool]:
    """A market order: lock, read, plan, write: a few Core statements in one short transaction
    (the account lock, one read of the price and the holding, then the writes)."""
    conn = session.connection()
    cash = lock_cash(conn, username)
    prior = _prior_order(session, username, req, key, req_hash)
    if prior is not None:
        return to_view(prior), False
    listing, position = read_listing_and_position(conn, username, req.asset_id)
    price = _require_tradeable(listing, req.asset_id)
    if price is None or price <= 0:
        raise BusinessRuleViolation(f"No current price for {req.asset_id}; try again later", "asset_id")
    _check_value(req.quantity, price)
    plan = plan_fill(cash, position, _new_order(username, req, now), price, now)
    write_fill(session, plan, now, new_order=True)
    if key is not None:
        idempotency.store(session, username, "order", key, req_hash, {"order_id": plan.order["order_id"]})
    return order_view(plan.order), True


def _place_limit(
    session: Session, username: str, req: OrderRequest, key: str | None, req_hash: str, now: datetime
) -> tuple[OrderView, bool]:
    """A limit order rests as `pending` with a hold on the cash (buy) or the coins (sell)."""
    account = lock_account(session, username)
    prior = _prior_order(session, username, req, key, req_hash)
    if prior is not None:
        return to_view(prior), False
    _tradeable_price(session, req.asset_id)
    order = Order(**_new_order(username, req, now))
    assert req.limit_price is not None
    _check_value(req.quantity, req.limit_price)
    quote = quote_fill(req.is_buy, req.quantity, req.limit_price)
    order.total_amount = quote.gross
    order.fee = quote.fee
    if req.is_buy:
        require_funds(account.cash, account.held, quote.net, "quantity")
        order.held_amount = quote.net
        account.held += quote.net
        account.version += 1
        account.updated_at = order.created_at
        session.add(account)
        outbox.emit(session, "balance", account.username, account)
    else:
        holding = session.get(Holding, (order.username, order.asset_id))
        require_free_quantity(holding, req.quantity, req.asset_id)
        assert holding is not None
        holding.held_quantity += req.quantity
        holding.version += 1
        holding.updated_at = order.created_at
        session.add(holding)
        emit_holding(session, holding)
    session.add(order)
    outbox.emit(session, "order", order.order_id, order)
    if key is not None:
        idempotency.store(session, username, "order", key, req_hash, {"order_id": order.order_id})
    return to_view(order), True


def cancel_order(username: str, order_id: str, *, uow: UnitOfWork | None = None) -> OrderView:
    """Cancel a pending order and release its hold. Completed, cancelled or expired: Conflict (409)."""
    now = utcnow()
    with write_session(uow) as session:
        account = lock_account(session, username)
        order = session.get(Order, order_id)
        if order is None or order.username != username:
            raise NotFound("Order not found")
        if order.status != OrderStatus.PENDING:
            raise Conflict(f"Order is {order.status}; only pending orders can be cancelled")
        release(session, account, order, OrderStatus.CANCELLED, now)
        return to_view(order)
