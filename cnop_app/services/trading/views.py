"""Read models of orders and fills, as the API and the UI show them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from cnop_app.domain import trading as rules
from cnop_app.domain.enums import OrderType
from cnop_app.models import AssetTransaction, Order


@dataclass(frozen=True)
class OrderView:
    order_id: str
    client_order_id: str | None
    username: str
    asset_id: str
    order_type: str
    status: str
    quantity: Decimal
    price: Decimal | None  # executed price once filled, else the limit price
    limit_price: Decimal | None
    executed_price: Decimal | None
    total_amount: Decimal  # gross value (estimate at the limit price while pending)
    fee: Decimal
    net_amount: Decimal  # cash that moved (or will move): buy gross + fee, sell gross - fee
    held_amount: Decimal
    expires_at: datetime | None
    reject_reason: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @property
    def is_buy(self) -> bool:
        return OrderType(self.order_type).is_buy


@dataclass(frozen=True)
class FillView:
    id: int
    order_id: str
    asset_id: str
    transaction_type: str
    quantity: Decimal
    price: Decimal
    total_amount: Decimal
    fee: Decimal
    status: str
    created_at: datetime


def to_view(order: Order) -> OrderView:
    return order_view({name: getattr(order, name) for name in Order.model_fields})


def order_view(order: Mapping[str, Any]) -> OrderView:
    """The view of an order held as its column values."""
    executed = order["executed_price"]
    return OrderView(
        order_id=order["order_id"],
        client_order_id=order["client_order_id"],
        username=order["username"],
        asset_id=order["asset_id"],
        order_type=order["order_type"],
        status=order["status"],
        quantity=order["quantity"],
        price=executed if executed is not None else order["limit_price"],
        limit_price=order["limit_price"],
        executed_price=executed,
        total_amount=order["total_amount"],
        fee=order["fee"],
        net_amount=rules.net_amount(order["order_type"], order["total_amount"], order["fee"]),
        held_amount=order["held_amount"],
        expires_at=order["expires_at"],
        reject_reason=order["reject_reason"],
        created_at=order["created_at"],
        updated_at=order["updated_at"],
        completed_at=order["completed_at"],
    )


def to_fill_view(tx: AssetTransaction) -> FillView:
    return FillView(
        id=tx.id or 0,
        order_id=tx.order_id,
        asset_id=tx.asset_id,
        transaction_type=tx.transaction_type,
        quantity=tx.quantity,
        price=tx.price,
        total_amount=tx.total_amount,
        fee=tx.fee,
        status=tx.status,
        created_at=tx.created_at,
    )
