"""Bodies of the trading routes: orders, fills, portfolio, holdings."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from cnop_app.api.schemas.common import ApiModel, DecimalText, Money, Timestamp
from cnop_app.domain.trading import PRICE_STEP
from cnop_app.services import portfolio, trading


class OrderOut(ApiModel):
    order_id: str
    client_order_id: str | None
    order_type: str
    asset_id: str
    quantity: DecimalText
    price: DecimalText | None
    limit_price: DecimalText | None
    executed_price: DecimalText | None
    status: str
    total_amount: Money
    fee: Money
    net_amount: Money
    held_amount: Money
    expires_at: Timestamp | None
    reject_reason: str | None
    created_at: Timestamp
    updated_at: Timestamp
    completed_at: Timestamp | None

    @classmethod
    def of(cls, order: trading.OrderView) -> OrderOut:
        return cls.model_validate(order)


class OrderEnvelope(ApiModel):
    data: OrderOut

    @classmethod
    def of(cls, order: trading.OrderView) -> OrderEnvelope:
        return cls(data=OrderOut.of(order))


class OrderPageOut(ApiModel):
    data: list[OrderOut]
    has_more: bool
    limit: int
    offset: int


class FillOut(ApiModel):
    transaction_id: str
    order_id: str
    asset_id: str
    transaction_type: str
    quantity: DecimalText
    price: DecimalText
    total_amount: Money
    fee: Money
    status: str
    timestamp: Timestamp

    @classmethod
    def of(cls, fill: trading.FillView) -> FillOut:
        return cls(
            transaction_id=str(fill.id),
            order_id=fill.order_id,
            asset_id=fill.asset_id,
            transaction_type=fill.transaction_type,
            quantity=fill.quantity,
            price=fill.price,
            total_amount=fill.total_amount,
            fee=fill.fee,
            status=fill.status,
            timestamp=fill.created_at,
        )


class FillPageOut(ApiModel):
    data: list[FillOut]
    has_more: bool
    limit: int
    offset: int


class HoldingOut(ApiModel):
    asset_id: str
    asset_name: str
    image: str | None
    quantity: DecimalText
    held_quantity: DecimalText
    available_quantity: DecimalText
    average_cost: DecimalText
    cost_basis: Money
    current_price: DecimalText | None
    market_value: Money
    total_value: Money
    unrealized_pnl: Money
    unrealized_pnl_percent: DecimalText | None
    realized_pnl: Money
    percentage: DecimalText
    allocation_percent: DecimalText
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, holding: portfolio.HoldingView) -> HoldingOut:
        zero = Decimal(0)
        return cls(
            asset_id=holding.asset_id,
            asset_name=holding.name,
            image=holding.image,
            quantity=holding.quantity,
            held_quantity=holding.held_quantity,
            available_quantity=holding.available_quantity,
            # The stored average carries 18 decimals; shown to the price step.
            average_cost=holding.average_cost.quantize(PRICE_STEP, rounding=ROUND_HALF_EVEN),
            cost_basis=holding.cost_basis,
            current_price=holding.current_price,
            market_value=holding.market_value,
            total_value=holding.market_value,
            unrealized_pnl=holding.unrealized_pnl,
            unrealized_pnl_percent=holding.unrealized_pnl_percent,
            realized_pnl=holding.realized_pnl,
            percentage=holding.percentage if holding.percentage is not None else zero,
            allocation_percent=holding.allocation_percent if holding.allocation_percent is not None else zero,
            created_at=holding.created_at,
            updated_at=holding.updated_at,
        )


class TotalsOut(ApiModel):
    cash: Money
    held_cash: Money
    available_cash: Money
    holdings_value: Money
    cost_basis: Money
    total_equity: Money
    unrealized_pnl: Money
    unrealized_pnl_percent: DecimalText | None
    realized_pnl: Money


class PortfolioOut(ApiModel):
    username: str
    assets: list[HoldingOut]
    asset_count: int
    usd_balance: Money
    total_asset_value: Money
    total_portfolio_value: Money
    totals: TotalsOut

    @classmethod
    def of(cls, view: portfolio.PortfolioView) -> PortfolioOut:
        return cls(
            username=view.username,
            assets=[HoldingOut.of(h) for h in view.holdings],
            asset_count=len(view.holdings),
            usd_balance=view.totals.cash,
            total_asset_value=view.totals.holdings_value,
            total_portfolio_value=view.totals.total_equity,
            totals=TotalsOut.model_validate(view.totals),
        )


class PortfolioPointOut(ApiModel):
    timestamp: Timestamp
    cash: Money
    holdings_value: Money
    total_value: Money

    @classmethod
    def of(cls, point: portfolio.HistoryPoint) -> PortfolioPointOut:
        return cls(
            timestamp=point.at, cash=point.cash, holdings_value=point.holdings_value, total_value=point.total_value
        )


class PortfolioHistoryOut(ApiModel):
    range: str
    data: list[PortfolioPointOut]


class AssetBalanceOut(ApiModel):
    success: bool
    message: str
    data: HoldingOut
    timestamp: Timestamp
