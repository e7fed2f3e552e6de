"""The portfolio page: holdings, totals and charts (`PortfolioMixin`, shared with the dashboard)."""

from __future__ import annotations

from cnop_app.state.auth import AuthState
from cnop_app.state.trading_common import PortfolioMixin


class PortfolioState(PortfolioMixin, AuthState):
    pass
