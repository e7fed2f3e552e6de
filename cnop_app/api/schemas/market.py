"""Bodies of /api/v1/inventory/assets and /api/v1/market, built from the market service's dicts.

Asset figures are display data: they stay JSON numbers (`JsonNumber`), unlike money and orders.
"""

from __future__ import annotations

from typing import Any, Literal

from cnop_app.api.schemas.common import ApiModel, JsonNumber


class AssetSummaryOut(ApiModel):
    asset_id: str
    name: str
    description: str | None
    category: str
    price_usd: JsonNumber | None
    is_active: bool
    symbol: str
    image: str | None
    market_cap_rank: int | None
    price_change_percentage_24h: JsonNumber | None
    market_cap: JsonNumber | None
    total_volume_24h: JsonNumber | None
    price_change_percentage_7d: JsonNumber | None
    last_updated: str | None
    source: str | None
    price_age_seconds: int | None
    stale: bool


class AssetDetailOut(AssetSummaryOut):
    availability_status: Literal["available", "unavailable"]
    price_change_24h: JsonNumber | None
    price_change_percentage_30d: JsonNumber | None
    high_24h: JsonNumber | None
    low_24h: JsonNumber | None
    circulating_supply: JsonNumber | None
    total_supply: JsonNumber | None
    max_supply: JsonNumber | None
    ath: JsonNumber | None
    ath_change_percentage: JsonNumber | None
    ath_date: str | None
    atl: JsonNumber | None
    atl_change_percentage: JsonNumber | None
    atl_date: str | None
    sparkline_7d: list[JsonNumber]
    coingecko_id: str | None


class AssetListOut(ApiModel):
    data: list[AssetSummaryOut]
    total_count: int
    active_count: int

    @classmethod
    def of(cls, result: dict[str, Any]) -> AssetListOut:
        return cls.model_validate(result)


class AssetOut(ApiModel):
    data: AssetDetailOut

    @classmethod
    def of(cls, detail: dict[str, Any]) -> AssetOut:
        return cls(data=AssetDetailOut.model_validate(detail))


class PricePointOut(ApiModel):
    at: str
    price: JsonNumber


class AssetHistoryOut(ApiModel):
    asset_id: str
    range: str
    points: list[PricePointOut]
    change_percentage: JsonNumber | None


class AssetHistoryEnvelope(ApiModel):
    data: AssetHistoryOut

    @classmethod
    def of(cls, history: dict[str, Any]) -> AssetHistoryEnvelope:
        return cls(data=AssetHistoryOut.model_validate(history))


class BreakerOut(ApiModel):
    state: str
    failures: int
    opened_at: str | None
    threshold: int
    reset_seconds: int


class MarketStatusOut(ApiModel):
    source: str
    as_of: str | None
    age_seconds: int | None
    stale: bool
    version: int
    last_attempt_at: str | None
    last_outcome: str | None
    last_error: str | None
    consecutive_failures: int
    retry_at: str | None
    coins_stored: int | None
    coins_skipped: int | None
    breaker: BreakerOut
    mode: Literal["active", "idle"]
    interval_seconds: int

    @classmethod
    def of(cls, status: dict[str, Any]) -> MarketStatusOut:
        return cls.model_validate(status)
