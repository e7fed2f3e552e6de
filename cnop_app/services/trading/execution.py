"""The steps every order runs inside its locked transaction: fill, release and the holding row.

The caller holds the account lock (`lock_account`); the arithmetic is `cnop_app.domain.trading`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlmodel import Session

from cnop_app.config import get_settings
from cnop_app.domain import trading as rules
from cnop_app.domain.cash import require_funds
from cnop_app.domain.enums import FillSide, LedgerType, OrderStatus, OrderType
from cnop_app.domain.money import decimal_str
from cnop_app.models import Account, AssetTransaction, Holding, Order
from cnop_app.services import outbox
from cnop_app.services.accounts import post_entry


def fee_bps() -> Decimal:
    return get_settings().fee_bps


def quote_fill(is_buy: bool, quantity: Decimal, price: Decimal) -> rules.FillQuote:
    return rules.quote(is_buy, quantity, price, fee_bps())


def holding_for(session: Session, username: str, asset_id: str, now: datetime) -> Holding:
    holding = session.get(Holding, (username, asset_id))
    if holding is None:
        holding = Holding(username=username, asset_id=asset_id, created_at=now, updated_at=now)
    return holding


def require_free_quantity(holding: Holding | None, quantity: Decimal, asset_id: str) -> None:
    owned = holding.quantity if holding else Decimal(0)
    held = holding.held_quantity if holding else Decimal(0)
    rules.require_quantity(owned, held, quantity, asset_id)


def emit_holding(session: Session, holding: Holding) -> None:
    outbox.emit(session, "holding", f"{holding.username}#{holding.asset_id}", holding)


def fill(session: Session, account: Account, order: Order, price: Decimal, now: datetime) -> None:
    """Execute `order` at `price`: cash, holding, fill row and order status. The account is locked."""
    holding = holding_for(session, order.username, order.asset_id, now)
    kind = OrderType(order.order_type)
    quantity = order.quantity
    quote = quote_fill(kind.is_buy, quantity, price)
    gross = quote.gross
    if kind.is_limit:
        # A limit order's fee was fixed at placement (a sale's still capped at its gross).
        fee = order.fee if kind.is_buy else rules.cap_sell_fee(order.fee, gross)
    else:
        fee = quote.fee
    if kind.is_buy:
        if kind.is_limit:
            # The hold is exactly this cost; releasing it and paying happen in the same transaction.
            account.held -= order.held_amount
            order.held_amount = Decimal(0)
        else:
            require_funds(account.cash, account.held, gross + fee, "quantity")
        post_entry(
            session,
            account,
            LedgerType.ORDER_PAYMENT,
            -gross,
            reference=order.order_id,
            description=f"Buy {decimal_str(quantity)} {order.asset_id} @ {decimal_str(price)}",
            now=now,
        )
        holding.average_cost = rules.average_cost_after_buy(
            holding.average_cost, holding.quantity, quantity, gross + fee
        )
        holding.quantity += quantity
        side = FillSide.BUY
    else:
        if kind.is_limit:
            holding.held_quantity -= quantity
        else:
            require_free_quantity(holding, quantity, order.asset_id)
        post_entry(
            session,
            account,
            LedgerType.ORDER_SALE,
            gross,
            reference=order.order_id,
            description=f"Sell {decimal_str(quantity)} {order.asset_id} @ {decimal_str(price)}",
            now=now,
        )
        holding.realized_pnl += rules.realized_on_sell(holding.average_cost, quantity, gross, fee)
        holding.quantity -= quantity
        if holding.quantity == 0:
            holding.average_cost = Decimal(0)
        side = FillSide.SELL
    if fee > 0:
        post_entry(session, account, LedgerType.FEE, -fee, reference=order.order_id, description="Trading fee", now=now)
    if holding.quantity < 0 or holding.held_quantity < 0 or holding.held_quantity > holding.quantity:
        raise RuntimeError(f"holding invariant broken for order {order.order_id}")  # never commit it
    holding.version += 1
    holding.updated_at = now
    session.add(holding)
    order.status = OrderStatus.COMPLETED
    order.executed_price = price
    order.total_amount = gross
    order.fee = fee
    order.completed_at = now
    order.updated_at = now
    session.add(order)
    tx = AssetTransaction(
        username=order.username,
        asset_id=order.asset_id,
        order_id=order.order_id,
        transaction_type=side,
        quantity=quantity,
        price=price,
        total_amount=gross,
        fee=fee,
        status=OrderStatus.COMPLETED,
        created_at=now,
    )
    session.add(tx)
    if outbox.enabled():
        session.flush()  # the fill's id keys its outbox record
        outbox.emit(session, "order", order.order_id, order)
        emit_holding(session, holding)
        outbox.emit(session, "asset_transaction", str(tx.id), tx)


def release(session: Session, account: Account, order: Order, status: OrderStatus, now: datetime) -> None:
    """End a pending order without a fill and give back what it held."""
    if order.order_type == OrderType.LIMIT_BUY:
        account.held -= order.held_amount
        order.held_amount = Decimal(0)
        account.version += 1
        account.updated_at = now
        session.add(account)
        outbox.emit(session, "balance", account.username, account)
    elif order.order_type == OrderType.LIMIT_SELL:
        holding = session.get(Holding, (order.username, order.asset_id))
        if holding is not None:
            holding.held_quantity -= order.quantity
            holding.version += 1
            holding.updated_at = now
            session.add(holding)
            emit_holding(session, holding)
    order.status = status
    order.updated_at = now
    order.completed_at = now
    session.add(order)
    outbox.emit(session, "order", order.order_id, order)
