"""Trading routes: orders, fills, portfolio, holdings. Thin: shape checks here, rules in services."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, PlainValidator, StrictStr, WithJsonSchema

from cnop_app.api.deps import current_principal
from cnop_app.api.schemas.common import errors
from cnop_app.api.schemas.trading import (
    AssetBalanceOut,
    FillOut,
    FillPageOut,
    HoldingOut,
    OrderEnvelope,
    OrderOut,
    OrderPageOut,
    PortfolioHistoryOut,
    PortfolioOut,
    PortfolioPointOut,
)
from cnop_app.domain.paging import MAX_PAGE
from cnop_app.domain.timeutil import utcnow
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


@router.post("/orders", status_code=201, response_model=OrderEnvelope, responses=errors(401, 404, 409, 413, 422))
def place_order(
    body: OrderBody,
    principal: auth.Principal = Depends(current_principal),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> OrderEnvelope:
    return OrderEnvelope.of(trading.place_order(principal.username, body.model_dump(), idempotency_key))


@router.get("/orders", response_model=OrderPageOut, responses=errors(401, 422))
def list_orders(
    asset_id: str | None = Query(default=None, max_length=10),
    order_type: str | None = Query(default=None, max_length=16),
    status: str | None = Query(default=None, max_length=16),
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
    offset: int = Query(default=0, ge=0),
    principal: auth.Principal = Depends(current_principal),
) -> OrderPageOut:
    rows, has_more = trading.list_orders(principal.username, asset_id, order_type, status, limit, offset)
    return OrderPageOut(data=[OrderOut.of(o) for o in rows], has_more=has_more, limit=limit, offset=offset)


@router.get("/orders/{order_id}", response_model=OrderEnvelope, responses=errors(401, 404, 422))
def get_order(order_id: str, principal: auth.Principal = Depends(current_principal)) -> OrderEnvelope:
    return OrderEnvelope.of(trading.get_order(principal.username, order_id))


@router.post("/orders/{order_id}/cancel", response_model=OrderEnvelope, responses=errors(401, 404, 409, 422))
def cancel_order(order_id: str, principal: auth.Principal = Depends(current_principal)) -> OrderEnvelope:
    return OrderEnvelope.of(trading.cancel_order(principal.username, order_id))


@router.get("/assets/{asset_id}/transactions", response_model=FillPageOut, responses=errors(401, 422))
def asset_transactions(
    asset_id: str,
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
    offset: int = Query(default=0, ge=0),
    principal: auth.Principal = Depends(current_principal),
) -> FillPageOut:
    rows, has_more = trading.list_asset_transactions(principal.username, asset_id, limit, offset)
    return FillPageOut(data=[FillOut.of(t) for t in rows], has_more=has_more, limit=limit, offset=offset)


@router.get("/portfolio", response_model=PortfolioOut, responses=errors(401, 404))
def get_portfolio(principal: auth.Principal = Depends(current_principal)) -> PortfolioOut:
    return PortfolioOut.of(portfolio.get_portfolio(principal.username))


@router.get("/portfolio/history", response_model=PortfolioHistoryOut, responses=errors(401, 422))
def portfolio_history(
    range_: str = Query(default="24h", alias="range", max_length=8),
    principal: auth.Principal = Depends(current_principal),
) -> PortfolioHistoryOut:
    points = portfolio.history(principal.username, range_)
    return PortfolioHistoryOut(range=range_, data=[PortfolioPointOut.of(p) for p in points])


@router.get("/balance/asset/{asset_id}", response_model=AssetBalanceOut, responses=errors(401, 404, 422))
def asset_balance(asset_id: str, principal: auth.Principal = Depends(current_principal)) -> AssetBalanceOut:
    holding = portfolio.get_holding(principal.username, asset_id)
    return AssetBalanceOut(
        success=True, message="Asset balance retrieved", data=HoldingOut.of(holding), timestamp=utcnow()
    )
