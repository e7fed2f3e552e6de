"""Bodies of /api/v1/account/reset and /api/v1/watchlist."""

from __future__ import annotations

from cnop_app.api.schemas.common import ApiModel, DecimalText, JsonNumber, Money, Timestamp
from cnop_app.services import account_reset, watchlist


class ClosedPositionOut(ApiModel):
    asset_id: str
    quantity: DecimalText
    price: DecimalText
    proceeds: Money
    order_id: str


class ResetOut(ApiModel):
    message: str
    reset_id: str
    starting_cash: Money
    cash_before: Money
    adjustment: Money
    cash_after: Money
    cancelled_orders: int
    closed_positions: list[ClosedPositionOut]

    @classmethod
    def of(cls, result: account_reset.ResetResult) -> ResetOut:
        return cls(
            message=f"Account reset: {len(result.closed_positions)} position(s) closed, "
            f"{result.cancelled_orders} open order(s) cancelled",
            reset_id=result.reset_id,
            starting_cash=result.starting_cash,
            cash_before=result.cash_before,
            adjustment=result.adjustment,
            cash_after=result.cash_after,
            cancelled_orders=result.cancelled_orders,
            closed_positions=[ClosedPositionOut.model_validate(p) for p in result.closed_positions],
        )


class WatchItemOut(ApiModel):
    asset_id: str
    name: str
    image: str | None
    is_active: bool
    price_usd: JsonNumber | None
    price_change_percentage_24h: JsonNumber | None
    added_at: Timestamp


class WatchlistOut(ApiModel):
    data: list[WatchItemOut]

    @classmethod
    def of(cls, items: list[watchlist.WatchView]) -> WatchlistOut:
        return cls(data=[WatchItemOut.model_validate(i) for i in items])


class WatchChangeOut(ApiModel):
    message: str
    changed: bool
    data: list[WatchItemOut]

    @classmethod
    def of(cls, message: str, changed: bool, items: list[watchlist.WatchView]) -> WatchChangeOut:
        return cls(message=message, changed=changed, data=[WatchItemOut.model_validate(i) for i in items])
