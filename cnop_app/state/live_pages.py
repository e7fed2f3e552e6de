"""The states that live pushes update, in the order a push opens them: the market's first, whose
status shows on every page (`state/live.py`). The app registers these; the tests use the same list."""

from cnop_app.state.admin_overview import AdminOverviewState
from cnop_app.state.auth import AuthState
from cnop_app.state.dashboard import DashboardState
from cnop_app.state.market import AssetState, LandingState, MarketState
from cnop_app.state.orders import OrdersState
from cnop_app.state.portfolio import PortfolioState
from cnop_app.state.trade import TradeState

LIVE_STATES: tuple[type[AuthState], ...] = (
    MarketState,
    AssetState,
    LandingState,
    TradeState,
    PortfolioState,
    OrdersState,
    DashboardState,
    AdminOverviewState,
)
