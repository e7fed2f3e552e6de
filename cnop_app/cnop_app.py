"""The CNOP Reflex app: pages, the REST API (api_transformer) and start-up tasks."""

import asyncio
import gc
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import reflex as rx
from starlette.types import ASGIApp

from cnop_app import http_security, scheduler
from cnop_app.api import ApiFirst, EventLane, create_api
from cnop_app.components.layout import toaster
from cnop_app.config import get_settings
from cnop_app.event_socket import EventSocket, event_mount
from cnop_app.observability.logging import configure_logging, get_logger
from cnop_app.observability.middleware import add_request_observer
from cnop_app.observability.multiprocess import forget_this_process
from cnop_app.pages import (
    account,
    admin_assets,
    admin_audit,
    admin_orders,
    admin_overview,
    admin_users,
    asset,
    auth,
    dashboard,
    market,
    orders,
    profile,
    trade,
)
from cnop_app.pages import portfolio as portfolio_page
from cnop_app.services import activity, mirror
from cnop_app.services import auth as auth_service
from cnop_app.services import market as market_service
from cnop_app.services.auth import metrics as auth_metrics
from cnop_app.state import visitors, wire
from cnop_app.state.account import AccountState
from cnop_app.state.admin_assets import AdminAssetsState
from cnop_app.state.admin_audit import AdminAuditState
from cnop_app.state.admin_orders import AdminOrdersState
from cnop_app.state.admin_overview import AdminOverviewState
from cnop_app.state.admin_users import AdminUsersState, AdminUserState
from cnop_app.state.auth import AuthState
from cnop_app.state.dashboard import DashboardState
from cnop_app.state.live import collector_paused, push_prices, register_live_state
from cnop_app.state.live_pages import LIVE_STATES
from cnop_app.state.market import AssetState, LandingState, MarketState
from cnop_app.state.market import snapshot as market_snapshot
from cnop_app.state.orders import OrdersState
from cnop_app.state.portfolio import PortfolioState
from cnop_app.state.profile import ProfileState
from cnop_app.state.trade import TradeState

settings = get_settings()
configure_logging(settings.log_level, settings.log_json)
_log = get_logger("app")


class CnopApp(rx.App):
    """Reflex's app, with the API's requests and the browsers' event websockets served ahead of Reflex's
    own layers (`ApiFirst`)."""

    def __call__(self) -> ASGIApp:
        top = super().__call__()
        if self._api is None:  # built by the call above
            raise RuntimeError("Reflex built no app to mount the event endpoint in")
        path = rx.config.get_config().prepend_backend_path(str(rx.constants.Endpoint.EVENT))
        events = EventSocket(event_mount(self._api.routes, path), self.set_contexts)
        return ApiFirst(top, http_security.wrap(api), api, EventLane(events.matches, http_security.wrap(events)))


api = create_api()
app = CnopApp(
    # The REST API mounts the Reflex app; the security headers wrap everything (pages included).
    api_transformer=[api, http_security.wrap],
    toaster=toaster(),
    stylesheets=["/cnop.css"],
    # The tab's icon (the top bar's mark); without one Chromium asks for /favicon.ico on every page.
    head_components=[rx.el.link(rel="icon", type="image/svg+xml", href="/favicon.svg")],
)


# How long a thread that wants the GIL waits before asking the holder to let go (CPython: 5 ms). A
# worker's threads hand the GIL back and forth on every request (event loop, database thread, the
# server's callbacks); a database thread coming back from SQLite or PostgreSQL waited up to 5 ms per
# statement, with the write lock held, while the event loop ran. 0.5 ms: +45 % orders/s (see
# docs/performance.md).
GIL_SWITCH_INTERVAL_S = 0.0005
FULL_COLLECTION_EVERY = 100  # second-generation collections per full one (Python's default: 10)


@asynccontextmanager
async def bootstrap() -> AsyncIterator[None]:
    # Idempotent start-up work in every worker: the configured admin and a non-empty catalogue.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    await asyncio.to_thread(auth_service.bootstrap_admin)
    await asyncio.to_thread(market_service.ensure_catalogue)
    if app.sio is not None:  # built with the ASGI app, before its lifespan
        wire.install(app.sio)  # orjson for what the websockets send (the live push encodes per tab)
    # Everything loaded so far (the app, its pages and states, the libraries) lives as long as the
    # process: out of the collector's sight, a full collection no longer walks it (74 ms pauses in
    # the middle of a live push were measured before).
    gc.freeze()
    # A full collection came about once a second under an order load and stopped the loop 14-88 ms
    # each time (collecting nothing): most of the SQLite order row's p99 (53-62 ms against 47-48 ms
    # with this, in alternating runs). Once per 100 second-generation collections instead of 10:
    # cyclic garbage that outlived two collections waits ten times longer; the rest is freed by
    # reference counting as before.
    young, middle, _full = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    # uvloop when installed (requirements.txt): says which loop the server gave this worker.
    _log.info("worker ready", extra={"event_loop": type(asyncio.get_running_loop()).__module__})
    yield
    forget_this_process()


async def push_to_browsers() -> None:
    market_snapshot.invalidate()  # new prices were just stored: no client may see the old version
    # The shared table of the new version (~15 ms for 52 coins) is built in a thread, not on the loop
    # that serves every websocket of this worker; the push then finds it ready.
    started = time.perf_counter()
    with collector_paused():  # from the new table to the last tab (see `collector_paused`)
        await asyncio.to_thread(market_snapshot.current)
        built = time.perf_counter()
        clients = await push_prices(app)
    done = time.perf_counter()
    _log.info(
        "prices pushed",
        extra={
            "clients": clients,
            "table_ms": round((built - started) * 1000, 1),
            "push_ms": round((done - built) * 1000, 1),
        },
    )


add_request_observer(activity.record_request)
app.add_middleware(http_security.AuditClientMiddleware())  # UI events' audit rows name their client
for live_state in LIVE_STATES:
    register_live_state(live_state)
# After each refresh: the refresher's follow-ups (limit orders first; its housekeeping once it has
# pushed), and every process pushes the new prices to its browsers.
scheduler.register_followups()
scheduler.add_async_post_refresh_callback(push_to_browsers)
app.register_lifespan_task(bootstrap)
app.register_lifespan_task(scheduler.scheduler_lifespan)
app.register_lifespan_task(mirror.mirror_lifespan)
app.register_lifespan_task(auth_metrics.active_sessions_lifespan)
# Reflex passes this rx.App as `app` (the task's parameter of that name).
app.register_lifespan_task(visitors.forgetting_past_visitors, keep_seconds=settings.ui_state_keep_seconds)

app.add_page(auth.landing, route="/", title="CNOP · Paper trading", on_load=LandingState.load)
app.add_page(auth.login, route="/login", title="Log in · CNOP", on_load=AuthState.redirect_if_signed_in)
app.add_page(auth.register, route="/register", title="Sign up · CNOP", on_load=AuthState.redirect_if_signed_in)
app.add_page(account.account, route="/account", title="Account · CNOP", on_load=AccountState.load)
app.add_page(profile.profile, route="/profile", title="Profile · CNOP", on_load=ProfileState.load)
app.add_page(market.market, route="/market", title="Market · CNOP", on_load=MarketState.load)
app.add_page(asset.asset, route="/market/[asset_id]", title="Asset · CNOP", on_load=AssetState.load)
app.add_page(dashboard.dashboard, route="/dashboard", title="Dashboard · CNOP", on_load=DashboardState.load)
app.add_page(trade.trade, route="/trade", title="Trade · CNOP", on_load=TradeState.load)
app.add_page(portfolio_page.portfolio, route="/portfolio", title="Portfolio · CNOP", on_load=PortfolioState.load)
app.add_page(orders.orders, route="/orders", title="Orders · CNOP", on_load=OrdersState.load)
app.add_page(admin_overview.overview, route="/admin", title="Admin · CNOP", on_load=AdminOverviewState.load)
app.add_page(admin_users.users, route="/admin/users", title="Users · Admin · CNOP", on_load=AdminUsersState.load)
# The segment is read from the URL path: a route arg named `username` would shadow AuthState.username.
app.add_page(
    admin_users.user, route="/admin/users/[admin_user]", title="User · Admin · CNOP", on_load=AdminUserState.load
)
app.add_page(admin_assets.assets, route="/admin/assets", title="Assets · Admin · CNOP", on_load=AdminAssetsState.load)
app.add_page(admin_orders.orders, route="/admin/orders", title="Orders · Admin · CNOP", on_load=AdminOrdersState.load)
app.add_page(admin_audit.audit, route="/admin/audit", title="Audit · Admin · CNOP", on_load=AdminAuditState.load)
