"""/api/v1/inventory/assets and /api/v1/market: the catalogue, price history and feed status.

Asset figures are display data: Decimal values are rendered as JSON numbers (DESIGN.md section 3).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from cnop_app.services import market

router = APIRouter(tags=["market"])


def json_numbers(value: Any) -> Any:
    """Decimal -> int or float, recursively (pydantic would turn Decimal into strings)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, dict):
        return {k: json_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_numbers(v) for v in value]
    return value


@router.get("/inventory/assets")
def list_assets(
    active_only: bool = Query(default=True),
    limit: int = Query(default=50, ge=1, le=market.MAX_LIST_LIMIT),
) -> JSONResponse:
    return JSONResponse(json_numbers(market.list_assets(active_only=active_only, limit=limit)))


@router.get("/inventory/assets/{asset_id}")
def get_asset(asset_id: str) -> JSONResponse:
    return JSONResponse({"data": json_numbers(market.get_asset(asset_id))})


@router.get("/inventory/assets/{asset_id}/history")
def asset_history(
    asset_id: str,
    range_: Literal["24h", "7d", "30d"] = Query(default="24h", alias="range"),
) -> JSONResponse:
    return JSONResponse({"data": json_numbers(market.asset_history(asset_id, range_))})


@router.get("/market/status")
def market_status() -> JSONResponse:
    return JSONResponse(market.market_status())
