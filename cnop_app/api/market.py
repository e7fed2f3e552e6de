"""/api/v1/inventory/assets and /api/v1/market: the catalogue, price history and feed status.

Asset figures are display data: they are rendered as JSON numbers (`schemas.common.JsonNumber`).
"""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from cnop_app.api.deps import reading
from cnop_app.api.schemas.common import ASSET_ID_PATTERN, errors
from cnop_app.api.schemas.market import AssetHistoryEnvelope, AssetListOut, AssetOut, MarketStatusOut
from cnop_app.config import get_settings
from cnop_app.services import market

router = APIRouter(tags=["market"])


@router.get("/inventory/assets", response_model=AssetListOut, responses=errors(422))
async def list_assets(
    active_only: bool = Query(default=True),
    limit: int = Query(default=50, ge=1, le=market.MAX_LIST_LIMIT),
) -> Response:
    return Response(await reading(lambda: _asset_list(active_only, limit)), media_type="application/json")


# The rendered asset list, shared by every caller within one second of one market state of one
# database: it changes with the shared market status (every refresh and admin change bumps its
# version) and, through `price_age_seconds`, with the clock. Bots poll this list; 100 coins cost ~4 ms
# to read and render. The database is part of the key: two databases can hold the same status (a
# process that switches databases, as the tests do, was served the other one's list).
_asset_lists: dict[tuple[str, str, bool, int, int], bytes] = {}
_ASSET_LISTS_KEPT = 32


def _asset_list(active_only: bool, limit: int) -> bytes:
    key = (get_settings().database_url, market.status_text(), active_only, limit, int(time.time()))
    body = _asset_lists.get(key)
    if body is None:
        model = AssetListOut.of(market.list_assets(active_only=active_only, limit=limit))
        body = JSONResponse(model.model_dump(mode="json", by_alias=True)).body
        if len(_asset_lists) >= _ASSET_LISTS_KEPT:
            _asset_lists.clear()
        _asset_lists[key] = body
    return body


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
