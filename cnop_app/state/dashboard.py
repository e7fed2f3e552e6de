"""The dashboard: the portfolio's totals and allocation, the recent fills and the top movers."""

from __future__ import annotations

from cnop_app.domain.enums import OrderStatus
from cnop_app.services import trading
from cnop_app.state.auth import AuthState
from cnop_app.state.market import top_movers
from cnop_app.state.rows import MarketRow, OrderRow
from cnop_app.state.trading_common import PortfolioMixin, order_row


class DashboardState(PortfolioMixin, AuthState):
    recent: list[OrderRow] = []
    movers: list[MarketRow] = []

    def _fill(self, username: str) -> None:
        PortfolioMixin._fill(self, username)
        rows, _ = trading.list_orders(username, status=OrderStatus.COMPLETED, limit=5)
        self.recent = [order_row(o) for o in rows]
        self.movers = top_movers()
