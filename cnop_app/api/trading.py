"""Trading routes: orders, fills, portfolio, holdings. Thin: shape checks here, rules in services."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, PlainValidator, StrictStr, StringConstraints, WithJsonSchema

from cnop_app.api.deps import (
    BEARER_REQUIRED,
    Credentials,
    as_caller,
    as_caller_writing,
    current_principal,
    rendered,
    verified_bearer,
)
from cnop_app.api.direct import Call, lane_for
from cnop_app.api.schemas.common import ASSET_ID_PATTERN, errors
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
from cnop_app.db import UnitOfWork
from cnop_app.domain.enums import OrderStatus, OrderType
from cnop_app.domain.paging import MAX_OFFSET, MAX_PAGE
from cnop_app.domain.ranges import DEFAULT_RANGE, RANGE_NAMES
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
    order_type: OrderType
    asset_id: Annotated[StrictStr, StringConstraints(pattern=ASSET_ID_PATTERN)]
    quantity: DecimalInput
    price: DecimalInput | None = None
    expires_at: StrictStr | None = None
    client_order_id: StrictStr | None = None


@router.post("/orders", status_code=201, response_model=OrderEnvelope, responses=errors(401, 404, 409, 413, 422))
async def place_order(
    body: OrderBody,
    credentials: Credentials,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> Response:
    data = body.model_dump(mode="json")

    def place(principal: auth.Principal, uow: UnitOfWork) -> OrderEnvelope:
        return OrderEnvelope.of(trading.place_order(principal.username, data, idempotency_key, uow=uow))

    return rendered(await as_caller_writing(credentials, place), status_code=201)


@lane_for(place_order)
async def place_order_lane(request: Request, body: bytes) -> Call | None:
    """`place_order` called as FastAPI would call it, for a request that passes every check FastAPI
    makes first (`api.direct`): the JSON body, the bearer token, the body model. Any error: None, and
    FastAPI answers the request itself."""
    try:
        order = OrderBody.model_validate(json.loads(body))  # as FastAPI: `request.json()`, then the model
        credentials = await verified_bearer(request)
    except Exception:
        return None
    idempotency_key = request.headers.get("idempotency-key")
    return lambda: place_order(order, credentials, idempotency_key)


@router.get("/orders", response_model=OrderPageOut, responses=errors(401, 422))
def list_orders(
    asset_id: str | None = Query(default=None, pattern=ASSET_ID_PATTERN),
    order_type: OrderType | None = Query(default=None),
    status: OrderStatus | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
    principal: auth.Principal = Depends(current_principal),
) -> OrderPageOut:
    kind, state = (order_type.value if order_type else None), (status.value if status else None)
    rows, has_more = trading.list_orders(principal.username, asset_id, kind, state, limit, offset)
    return OrderPageOut(data=[OrderOut.of(o) for o in rows], has_more=has_more, limit=limit, offset=offset)


# Order ids are UUIDs: a malformed one is 422 naming order_id, a well-formed unknown one 404.
@router.get("/orders/{order_id}", response_model=OrderEnvelope, responses=errors(401, 404, 422))
def get_order(order_id: uuid.UUID, principal: auth.Principal = Depends(current_principal)) -> OrderEnvelope:
    return OrderEnvelope.of(trading.get_order(principal.username, str(order_id)))


@router.post("/orders/{order_id}/cancel", response_model=OrderEnvelope, responses=errors(401, 404, 409, 422))
def cancel_order(order_id: uuid.UUID, principal: auth.Principal = Depends(current_principal)) -> OrderEnvelope:
    return OrderEnvelope.of(trading.cancel_order(principal.username, str(order_id)))


@router.get("/assets/{asset_id}/transactions", response_model=FillPageOut, responses=errors(401, 404, 422))
def asset_transactions(
    asset_id: str = Path(pattern=ASSET_ID_PATTERN),
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
    principal: auth.Principal = Depends(current_principal),
) -> FillPageOut:
    rows, has_more = trading.list_asset_transactions(principal.username, asset_id, limit, offset)
    return FillPageOut(data=[FillOut.of(t) for t in rows], has_more=has_more, limit=limit, offset=offset)


@router.get("/portfolio", response_model=PortfolioOut, responses=errors(401, 404), openapi_extra=BEARER_REQUIRED)
async def get_portfolio(request: Request) -> Response:
    body = await as_caller(request, lambda principal: PortfolioOut.of(portfolio.get_portfolio(principal.username)))
    return rendered(body)


@router.get("/portfolio/history", response_model=PortfolioHistoryOut, responses=errors(401, 422))
def portfolio_history(
    range_: Literal[RANGE_NAMES] = Query(default=DEFAULT_RANGE, alias="range"),  # type: ignore[valid-type]
    principal: auth.Principal = Depends(current_principal),
) -> PortfolioHistoryOut:
    points = portfolio.history(principal.username, range_)
    return PortfolioHistoryOut(range=range_, data=[PortfolioPointOut.of(p) for p in points])


@router.get("/balance/asset/{asset_id}", response_model=AssetBalanceOut, responses=errors(401, 404, 422))
def asset_balance(
    asset_id: str = Path(pattern=ASSET_ID_PATTERN), principal: auth.Principal = Depends(current_principal)
) -> AssetBalanceOut:
    holding = portfolio.get_holding(principal.username, asset_id)
    return AssetBalanceOut(
        success=True, message="Asset balance retrieved", data=HoldingOut.of(holding), timestamp=utcnow()
    )
