"""Reset a paper account: a fresh start that keeps every past row.

In ONE transaction with the account row locked (so the limit-order matcher waits):
1. every pending order is cancelled and its hold released;
2. every position is closed by a system market sale at the stored price (an asset without a price
   is closed at the holding's average cost, to the price step): a real order, fill and ledger entries written by the
   same fill code as any sale, with the fee, so the ledger and the fills still explain every
   balance. These sales skip the order checks that would strand a position (minimum quantity,
   maximum order value, trading paused); their `client_order_id` is `reset-<reset id>-<asset>`;
3. one `system_adjustment` entry brings the cash to the chosen starting balance.
Nothing is deleted: past orders, fills, ledger entries and each holding's realized P&L stay.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from sqlmodel import col, select

from cnop_app.db import UnitOfWork, unit_of_work
from cnop_app.domain.admin import parse_starting_cash
from cnop_app.domain.enums import LedgerType, OrderStatus, OrderType
from cnop_app.domain.ids import new_id
from cnop_app.domain.money import decimal_str, money_str
from cnop_app.domain.timeutil import utcnow
from cnop_app.domain.trading import PRICE_STEP
from cnop_app.models import Asset, Holding, Order
from cnop_app.observability.logging import request_id_var
from cnop_app.services import audit
from cnop_app.services.accounts import lock_account, post_entry
from cnop_app.services.trading.execution import fill, release


@dataclass(frozen=True)
class ClosedPosition:
    asset_id: str
    quantity: Decimal
    price: Decimal
    proceeds: Decimal  # cash received: gross minus fee
    order_id: str


@dataclass(frozen=True)
class ResetResult:
    reset_id: str
    starting_cash: Decimal
    cancelled_orders: int
    closed_positions: list[ClosedPosition]
    cash_before: Decimal  # before the reset
    adjustment: Decimal  # the system_adjustment entry (0: none was needed)
    cash_after: Decimal


def reset_account(
    username: str, starting_cash: object, *, ip: str | None = None, uow: UnitOfWork | None = None
) -> ResetResult:
    """Cancel open orders, close every position, set the cash to `starting_cash` (0 to 1,000,000,
    whole cents). Audited as `account_reset`. See the module docstring for how."""
    target = parse_starting_cash(starting_cash)
    reset_id = uuid.uuid4().hex
    now = utcnow()
    with unit_of_work(uow) as work:
        session = work.session
        account = lock_account(session, username)
        cash_before = account.cash
        pending = session.exec(
            select(Order)
            .where(Order.username == username, Order.status == OrderStatus.PENDING)
            .order_by(col(Order.created_at), col(Order.order_id))
        ).all()
        for order in pending:
            release(session, account, order, OrderStatus.CANCELLED, now)
        closed = []
        holdings = session.exec(select(Holding).where(Holding.username == username).order_by(col(Holding.asset_id)))
        # Filtered in Python: SQLite stores exact decimals as text ("0.00000000" > "0").
        for holding in [h for h in holdings if h.quantity > 0]:
            asset = session.get(Asset, holding.asset_id)
            price = asset.price_usd if asset is not None else None
            if price is None or price <= 0:
                price = holding.average_cost.quantize(PRICE_STEP, rounding=ROUND_HALF_EVEN)
            order = Order(
                order_id=new_id(),
                client_order_id=f"reset-{reset_id}-{holding.asset_id}",
                username=username,
                asset_id=holding.asset_id,
                order_type=OrderType.MARKET_SELL,
                status=OrderStatus.PENDING,
                quantity=holding.quantity,
                created_at=now,
                updated_at=now,
            )
            fill(session, account, order, price, now)
            proceeds = order.total_amount - order.fee
            closed.append(ClosedPosition(holding.asset_id, order.quantity, price, proceeds, order.order_id))
        adjustment = target - account.cash
        if adjustment != 0:
            post_entry(
                session,
                account,
                LedgerType.SYSTEM_ADJUSTMENT,
                adjustment,
                reference=reset_id,
                description=f"Account reset to ${money_str(target)}",
                now=now,
            )
        audit.record(
            session,
            "account_reset",
            username,
            ip=ip,
            reset_id=reset_id,
            starting_cash=money_str(target),
            cash_before=money_str(cash_before),
            adjustment=money_str(adjustment),
            cancelled_orders=len(pending),
            closed_positions={p.asset_id: decimal_str(p.quantity) for p in closed},
            request_id=request_id_var.get(),
        )
        result = ResetResult(
            reset_id=reset_id,
            starting_cash=target,
            cancelled_orders=len(pending),
            closed_positions=closed,
            cash_before=cash_before,
            adjustment=adjustment,
            cash_after=account.cash,
        )
    return result
