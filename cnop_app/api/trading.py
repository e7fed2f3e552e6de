"""Trading routes: orders, fills, portfolio, holdings. Thin: shape checks here, rules in services."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, PlainValidator, StrictStr, WithJsonSchema

from cnop_app.api.deps import current_principal
from cnop_app.models import utcnow
from cnop_app.observability.metrics import ORDERS
from cnop_app.services import auth, portfolio, trading

router = APIRouter(tags=["trading"])


def _decimal_input(value: Any) -> str | int | float:
    # One validator (not a union) so a wrong type reports the field itself, not a union member.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("must be a decimal string or a number")
    return value


DecimalInput = Annotated[
    Any,
    PlainValidator(_decimal_input),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}], "examples": ["0.5"]}),
]


class OrderBody(BaseModel):
    # Quantities and prices: a string keeps every digit; a JSON number is read by its decimal text.
    order_type: StrictStr
    asset_id: StrictStr
    quantity: DecimalInput
    price: DecimalInput | None = None
    expires_at: StrictStr | None = None
    client_order_id: StrictStr | None = None


@router.post("/orders", status_code=201)
def place_order(
    body: OrderBody,
    principal: auth.Principal = Depends(current_principal),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    order = trading.place_order(principal.username, body.model_dump(), idempotency_key)
    ORDERS.labels(order.order_type, order.status).inc()
    return {"data": order.as_dict()}


@router.get("/orders")
def list_orders(
    asset_id: str | None = Query(default=None, max_length=10),
    order_type: str | None = Query(default=None, max_length=16),
    status: str | None = Query(default=None, max_length=16),
    limit: int = Query(default=50, ge=1, le=trading.MAX_PAGE),
    offset: int = Query(default=0, ge=0),
    principal: auth.Principal = Depends(current_principal),
) -> dict[str, Any]:
    rows, has_more = trading.list_orders(principal.username, asset_id, order_type, status, limit, offset)
    return {"data": [o.as_dict() for o in rows], "has_more": has_more, "limit": limit, "offset": offset}


@router.get("/orders/{order_id}")
def get_order(order_id: str, principal: auth.Principal = Depends(current_principal)) -> dict[str, Any]:
    return {"data": trading.get_order(principal.username, order_id).as_dict()}


@router.post("/orders/{order_id}/cancel")
def cancel_order(order_id: str, principal: auth.Principal = Depends(current_principal)) -> dict[str, Any]:
    return {"data": trading.cancel_order(principal.username, order_id).as_dict()}


@router.get("/assets/{asset_id}/transactions")
def asset_transactions(
    asset_id: str,
    limit: int = Query(default=50, ge=1, le=trading.MAX_PAGE),
    offset: int = Query(default=0, ge=0),
    principal: auth.Principal = Depends(current_principal),
) -> dict[str, Any]:
    rows, has_more = trading.list_asset_transactions(principal.username, asset_id, limit, offset)
    return {"data": [t.as_dict() for t in rows], "has_more": has_more, "limit": limit, "offset": offset}


@router.get("/portfolio")
def get_portfolio(principal: auth.Principal = Depends(current_principal)) -> dict[str, Any]:
    return portfolio.get_portfolio(principal.username).as_dict()


@router.get("/portfolio/history")
def portfolio_history(
    range_: str = Query(default="24h", alias="range", max_length=8),
    principal: auth.Principal = Depends(current_principal),
) -> dict[str, Any]:
    points = portfolio.history(principal.username, range_)
    return {"range": range_, "data": [p.as_dict() for p in points]}


@router.get("/balance/asset/{asset_id}")
def asset_balance(asset_id: str, principal: auth.Principal = Depends(current_principal)) -> dict[str, Any]:
    holding = portfolio.get_holding(principal.username, asset_id)
    return {
        "success": True,
        "message": "Asset balance retrieved",
        "data": holding.as_dict(),
        "timestamp": utcnow().isoformat(),
    }
