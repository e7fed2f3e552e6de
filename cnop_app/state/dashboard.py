"""The dashboard: the portfolio's totals and allocation, the recent fills, the watchlist and the top movers."""

from __future__ import annotations

from cnop_app.domain.enums import OrderStatus
from cnop_app.services import trading, watchlist
from cnop_app.state.auth import AuthState
from cnop_app.state.market import snapshot, top_movers
from cnop_app.state.rows import MarketRow, OrderRow
from cnop_app.state.trading_common import PortfolioMixin, order_row


def watch_rows(username: str, previous: list[MarketRow]) -> list[MarketRow]:
    """The user's starred assets as market rows (oldest star first) at the prices of this push; a price
    that moved since `previous` flashes (re-keyed per market version, as in the market table)."""
    version, _, formatted = snapshot.get()
    before = {r["id"]: r["price"] for r in previous}
    rows = []
    for item in watchlist.list_items(username):
        row = formatted.get(item.asset_id)
        if row is None:
            continue
        moved = item.asset_id in before and before[item.asset_id] != row["price"]
        key = f"{item.asset_id}-{version}" if moved else item.asset_id
        rows.append(MarketRow(**{**row, "flash": "changed" if moved else "", "key": key}))
    return rows


class DashboardState(PortfolioMixin, AuthState):
    recent: list[OrderRow] = []
    movers: list[MarketRow] = []
    watched: list[MarketRow] = []

    def _fill(self, username: str) -> None:
        PortfolioMixin._fill(self, username)
        rows, _ = trading.list_orders(username, status=OrderStatus.COMPLETED, limit=5)
        self.recent = [order_row(o) for o in rows]
        self.movers = top_movers()
        self.watched = watch_rows(username, self.watched)
