"""State shared by the trading pages: the row every order list shows, and the portfolio (holdings,
totals, charts) that the portfolio page and the dashboard both show."""

from __future__ import annotations

import reflex as rx

from cnop_app import formatting
from cnop_app.domain.enums import OrderStatus, OrderType
from cnop_app.domain.ranges import DEFAULT_RANGE, is_range
from cnop_app.services import activity, portfolio, trading
from cnop_app.services.auth import Principal
from cnop_app.state.auth import signed_in
from cnop_app.state.rows import AllocationSlice, HoldingRow, OrderRow, PortfolioTotals, ValuePoint

STATUS_COLOURS: dict[str, str] = {
    OrderStatus.PENDING: "amber",
    OrderStatus.COMPLETED: "green",
    OrderStatus.CANCELLED: "gray",
    OrderStatus.EXPIRED: "gray",
    OrderStatus.REJECTED: "red",
}


def order_row(o: trading.OrderView) -> OrderRow:
    return OrderRow(
        id=o.order_id,
        short_id=o.order_id[:8],
        type=OrderType(o.order_type).label,
        side="buy" if o.is_buy else "sell",
        asset=o.asset_id,
        quantity=formatting.quantity(o.quantity),
        price=formatting.usd(o.price) if o.price is not None else "market",
        total=formatting.usd(o.net_amount),
        fee=formatting.usd(o.fee),
        status=o.status,
        status_colour=STATUS_COLOURS.get(o.status, "gray"),
        when=formatting.relative_time(o.created_at),
        exact=formatting.utc_exact(o.created_at),
        expires=formatting.utc_exact(o.expires_at) if o.expires_at else "until cancelled",
    )


class PortfolioMixin(rx.State, mixin=True):
    """Holdings, totals and charts; mixed into the portfolio and dashboard states so each page's
    events run on its own state (an inherited handler would run on the parent state instead)."""

    holdings: list[HoldingRow] = []
    totals: PortfolioTotals = {}
    allocation: list[AllocationSlice] = []
    history: list[ValuePoint] = []
    history_range: str = DEFAULT_RANGE
    loading: bool = True
    live: bool = False

    def _fill(self, username: str) -> None:
        view = portfolio.get_portfolio(username)
        self.holdings = [
            HoldingRow(
                id=h.asset_id,
                name=h.name,
                quantity=formatting.quantity(h.quantity),
                held=formatting.quantity(h.held_quantity),
                avg_cost=formatting.usd(h.average_cost),
                price=formatting.usd(h.current_price),
                value=formatting.usd(h.market_value),
                cost_basis=formatting.usd(h.cost_basis),
                pnl=formatting.usd(h.unrealized_pnl),
                pnl_pct=formatting.percent(h.unrealized_pnl_percent),
                pnl_dir=formatting.direction(h.unrealized_pnl),
                realized=formatting.usd(h.realized_pnl),
                allocation=formatting.percent(h.allocation_percent).lstrip("+"),
            )
            for h in view.holdings
            if h.quantity > 0
        ]
        t = view.totals
        self.totals = PortfolioTotals(
            equity=formatting.usd(t.total_equity),
            cash=formatting.usd(t.cash),
            held_cash=formatting.usd(t.held_cash),
            available=formatting.usd(t.available_cash),
            holdings_value=formatting.usd(t.holdings_value),
            unrealized=formatting.usd(t.unrealized_pnl),
            unrealized_pct=formatting.percent(t.unrealized_pnl_percent),
            unrealized_dir=formatting.direction(t.unrealized_pnl),
            realized=formatting.usd(t.realized_pnl),
            realized_dir=formatting.direction(t.realized_pnl),
        )
        # Chart coordinates are display data.
        self.allocation = [
            AllocationSlice(name=h.asset_id, value=float(h.market_value)) for h in view.holdings if h.market_value > 0
        ]
        if t.available_cash > 0:
            self.allocation.append(AllocationSlice(name="Cash", value=float(t.cash)))
        points = portfolio.history(username, self.history_range)
        self.history = [ValuePoint(t=formatting.utc_exact(p.at)[5:16], value=float(p.total_value)) for p in points]
        self.loading = False

    @rx.event
    @signed_in
    def load(self, principal: Principal) -> None:
        activity.record_ui_event("page_view", principal.username)
        self._fill(principal.username)
        self._follow_prices()

    @rx.event
    @signed_in
    def set_history_range(self, principal: Principal, value: str | list[str]) -> None:
        if is_range(value):
            self.history_range = str(value)
            self._fill(principal.username)

    def _on_prices(self, principal: Principal | None) -> None:
        if self.live and principal is not None:
            self._fill(principal.username)
