"""/api/v1/inventory/assets and /api/v1/market: the catalogue, price history and feed status.

Asset figures are display data: they are rendered as JSON numbers (`schemas.common.JsonNumber`).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Path, Query

from cnop_app.api.schemas.common import ASSET_ID_PATTERN, errors
from cnop_app.api.schemas.market import AssetHistoryEnvelope, AssetListOut, AssetOut, MarketStatusOut
from cnop_app.services import market

router = APIRouter(tags=["market"])


@router.get("/inventory/assets", response_model=AssetListOut, responses=errors(422))
def list_assets(
    active_only: bool = Query(default=True),
    limit: int = Query(default=50, ge=1, le=market.MAX_LIST_LIMIT),
) -> AssetListOut:
    return AssetListOut.of(market.list_assets(active_only=active_only, limit=limit))


@router.get("/inventory/assets/{asset_id}", response_model=AssetOut, responses=errors(404, 422))
def get_asset(asset_id: str = Path(pattern=ASSET_ID_PATTERN)) -> AssetOut:
    return AssetOut.of(market.get_asset(asset_id))


@router.get("/inventory/assets/{asset_id}/history", response_model=AssetHistoryEnvelope, responses=errors(404, 422))
def asset_history(
    asset_id: str = Path(pattern=ASSET_ID_PATTERN),
    range_: Literal["24h", "7d", "30d"] = Query(default="24h", alias="range"),
) -> AssetHistoryEnvelope:
    return AssetHistoryEnvelope.of(market.asset_history(asset_id, range_))


@router.get("/market/status", response_model=MarketStatusOut)
def market_status() -> MarketStatusOut:
    return MarketStatusOut.of(market.market_status())
