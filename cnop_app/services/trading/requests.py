"""Order requests: the shape of an order, validated before any database work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from cnop_app.domain import trading as rules
from cnop_app.domain.enums import OrderStatus, OrderType, values
from cnop_app.domain.errors import ValidationFailed
from cnop_app.domain.money import decimal_str, parse_decimal
from cnop_app.domain.timeutil import parse_iso
from cnop_app.models import utcnow
from cnop_app.services import validation

ORDER_TYPES = values(OrderType)
STATUSES = values(OrderStatus)
MAX_CLIENT_ORDER_ID = 64


@dataclass(frozen=True)
class OrderRequest:
    order_type: str
    asset_id: str
    quantity: Decimal
    limit_price: Decimal | None
    expires_at: datetime | None
    client_order_id: str | None

    @property
    def is_buy(self) -> bool:
        return OrderType(self.order_type).is_buy

    @property
    def is_limit(self) -> bool:
        return OrderType(self.order_type).is_limit

    def fingerprint(self) -> dict[str, Any]:
        return {
            "order_type": self.order_type,
            "asset_id": self.asset_id,
            "quantity": decimal_str(self.quantity),
            "price": decimal_str(self.limit_price),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "client_order_id": self.client_order_id,
        }


def _parse_quantity(value: object) -> Decimal:
    quantity = parse_decimal(value, "quantity", max_places=rules.QUANTITY_PLACES)
    if quantity <= 0:
        raise ValidationFailed("quantity must be greater than 0", "quantity")
    if quantity < rules.MIN_QUANTITY:
        raise ValidationFailed(f"quantity must be at least {rules.MIN_QUANTITY}", "quantity")
    if quantity > rules.MAX_QUANTITY:
        raise ValidationFailed("quantity is too large", "quantity")
    return quantity


def _parse_price(value: object) -> Decimal:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationFailed("price is required for limit orders", "price")
    price = parse_decimal(value, "price", max_places=rules.PRICE_PLACES)
    if price <= 0:
        raise ValidationFailed("price must be greater than 0", "price")
    if price > rules.MAX_LIMIT_PRICE:
        raise ValidationFailed("price must be at most 1,000,000", "price")
    return price


def _parse_expiry(value: object, now: datetime) -> datetime | None:
    if value is None or value == "":
        return None
    expires_at = parse_iso(value)
    if expires_at is None:
        raise ValidationFailed("expires_at must be an ISO 8601 date-time", "expires_at")
    if expires_at <= now:
        raise ValidationFailed("expires_at must be in the future", "expires_at")
    return expires_at


def _parse_client_order_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_CLIENT_ORDER_ID:
        raise ValidationFailed(f"client_order_id must be 1-{MAX_CLIENT_ORDER_ID} characters", "client_order_id")
    return value.strip()


def _parse_order_type(value: object) -> OrderType:
    if not isinstance(value, str) or value.strip().lower() not in ORDER_TYPES:
        raise ValidationFailed("order_type must be one of " + ", ".join(ORDER_TYPES), "order_type")
    return OrderType(value.strip().lower())


def parse_order_request(data: dict[str, Any], now: datetime | None = None) -> OrderRequest:
    """Validate the shape of an order (no database). A market order ignores price and expires_at."""
    now = now or utcnow()
    order_type = _parse_order_type(data.get("order_type"))
    asset_id = validation.asset_id(data.get("asset_id"))
    quantity = _parse_quantity(data.get("quantity"))
    is_limit = order_type.is_limit
    limit_price = _parse_price(data.get("price")) if is_limit else None
    expires_at = _parse_expiry(data.get("expires_at"), now) if is_limit else None
    return OrderRequest(
        order_type=order_type,
        asset_id=asset_id,
        quantity=quantity,
        limit_price=limit_price,
        expires_at=expires_at,
        client_order_id=_parse_client_order_id(data.get("client_order_id")),
    )
