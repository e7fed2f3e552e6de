"""Trade ticket, open orders, portfolio, order history and dashboard: thin adapters over services."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import reflex as rx

from cnop_app import formatting
from cnop_app.config import get_settings
from cnop_app.domain import trading as rules
from cnop_app.domain.enums import OrderStatus, OrderType, values
from cnop_app.domain.errors import DomainError
from cnop_app.domain.ranges import DEFAULT_RANGE, is_range
from cnop_app.services import accounts, activity, market, portfolio, trading
from cnop_app.services.auth import Principal
from cnop_app.state.auth import AuthState, signed_in
from cnop_app.state.market import snapshot, top_movers
from cnop_app.state.pager import PagerMixin
from cnop_app.state.rows import (
    AllocationSlice,
    AssetOption,
    HoldingRow,
    MarketRow,
    OrderRow,
    PortfolioTotals,
    TicketErrors,
    TicketPreview,
    ValuePoint,
    error_for,
)

# The ticket's toggles; together they name an OrderType (`OrderType.of(kind, side)`).
SIDES = ("buy", "sell")
KINDS = ("market", "limit")
AMOUNT_MODES = ("quantity", "usd")
STATUS_COLOURS: dict[str, str] = {
    OrderStatus.PENDING: "amber",
    OrderStatus.COMPLETED: "green",
    OrderStatus.CANCELLED: "gray",
    OrderStatus.EXPIRED: "gray",
    OrderStatus.REJECTED: "red",
}
ANY = "all"  # the filters' "no filter" choice
ORDERS_PAGE_SIZE = 25


def _order_row(o: trading.OrderView) -> OrderRow:
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


def _dec(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip().replace(",", ""))
    except (InvalidOperation, AttributeError):
        return None
    return value if value.is_finite() else None


class TradeState(AuthState):
    """The order ticket with a live preview, a confirmation step and the open orders."""

    assets: list[AssetOption] = []
    asset_id: str = "BTC"
    side: str = "buy"
    kind: str = "market"
    amount_mode: str = "quantity"
    quantity_input: str = ""
    usd_input: str = ""
    limit_input: str = ""
    expiry: str = "gtc"
    preview: TicketPreview = {}
    ticket_errors: TicketErrors = {}
    confirming: bool = False
    submitting: bool = False
    open_orders: list[OrderRow] = []
    notice: str = ""
    live: bool = False
    loading: bool = True
    _pending_key: str = ""
    _pending_ids: list[str] = []

    # ---- helpers

    def _order_type(self) -> OrderType:
        return OrderType.of(self.kind, self.side)

    def _quantity(self, price: Decimal | None) -> Decimal | None:
        if self.amount_mode == "usd":
            usd = _dec(self.usd_input)
            if usd is None or price is None or price <= 0:
                return None
            return rules.quantity_for_usd(usd, price)
        return _dec(self.quantity_input)

    def _update_preview(self, username: str | None) -> None:
        """What the order would cost or pay now: the service's own fill arithmetic (`rules.quote`)."""
        price_now = market.latest_price(self.asset_id)
        price = _dec(self.limit_input) if self.kind == "limit" else price_now
        quantity = self._quantity(price)
        view = TicketPreview(
            market_price=formatting.usd(price_now),
            price=formatting.usd(price) if price else "—",
            quantity=formatting.quantity(quantity) if quantity else "—",
            gross="—",
            fee="—",
            total="—",
            cash_after="—",
            qty_after="—",
            ready="",
        )
        if username:
            balance = accounts.get_balance(username)
            try:
                holding = portfolio.get_holding(username, self.asset_id).available_quantity
            except DomainError:
                holding = Decimal(0)
            view["cash"] = formatting.usd(balance.available)
            view["holding"] = formatting.quantity(holding)
            if price and price > 0 and quantity and quantity > 0:
                is_buy = self._order_type().is_buy
                fill = rules.quote(is_buy, quantity, price, get_settings().fee_bps)
                view["gross"] = formatting.usd(fill.gross)
                view["fee"] = formatting.usd(fill.fee)
                view["total"] = formatting.usd(fill.net)
                view["cash_after"] = formatting.usd(balance.available + fill.cash_delta)
                view["qty_after"] = formatting.quantity(holding + quantity if is_buy else holding - quantity)
                view["ready"] = "yes"
        self.preview = view

    def _order_data(self) -> dict[str, Any]:
        price = market.latest_price(self.asset_id) if self.kind == "market" else _dec(self.limit_input)
        quantity = self._quantity(price)
        data: dict[str, Any] = {
            "order_type": self._order_type().value,
            "asset_id": self.asset_id,
            "quantity": format(quantity, "f") if quantity is not None else self.quantity_input,
        }
        if self.kind == "limit":
            data["price"] = self.limit_input
            _, delta = rules.EXPIRY_CHOICES.get(self.expiry, ("", None))
            if delta is not None:
                data["expires_at"] = (datetime.now(timezone.utc) + delta).isoformat()
        return data

    def _load_orders(self, username: str) -> None:
        rows = trading.list_open_orders(username)
        self.open_orders = [_order_row(o) for o in rows]
        self._pending_ids = [o.order_id for o in rows]

    def _refused(self, exc: DomainError) -> None:
        self.ticket_errors = error_for(TicketErrors, exc)

    # ---- events

    @rx.event
    @signed_in
    def load(self, principal: Principal) -> None:
        activity.record_ui_event("page_view", principal.username)
        _, raw, _ = snapshot.get()
        self.assets = [
            AssetOption(id=a["asset_id"], label=f"{a['name']} ({a['asset_id']})") for a in raw if a.get("is_active")
        ]
        params = self.router.url.query_parameters
        wanted = str(params.get("asset", "") or "").upper()
        if wanted and any(a["id"] == wanted for a in self.assets):
            self.asset_id = wanted
        elif not any(a["id"] == self.asset_id for a in self.assets) and self.assets:
            self.asset_id = self.assets[0]["id"]
        if params.get("side") in SIDES:
            self.side = str(params.get("side"))
        self.ticket_errors = {}
        self.notice = ""
        self.confirming = False
        self._load_orders(principal.username)
        self._update_preview(principal.username)
        self.live = True
        self.loading = False

    def _set(self, name: str, value: str, allowed: tuple[str, ...] | None = None) -> None:
        # Typing in the ticket needs no sign-in: without one the preview just leaves out the account.
        if allowed is not None and value not in allowed:
            return
        setattr(self, name, value[:32])
        self.ticket_errors = {}
        principal = self._principal()
        self._update_preview(principal.username if principal else None)

    @rx.event
    def set_asset(self, value: str) -> None:
        if any(a["id"] == value for a in self.assets):
            self._set("asset_id", value)

    @rx.event
    def set_side(self, value: str | list[str]) -> None:
        self._set("side", str(value), SIDES)

    @rx.event
    def set_kind(self, value: str | list[str]) -> None:
        self._set("kind", str(value), KINDS)

    @rx.event
    def set_amount_mode(self, value: str | list[str]) -> None:
        self._set("amount_mode", str(value), AMOUNT_MODES)

    @rx.event
    def set_quantity(self, value: str) -> None:
        self._set("quantity_input", value)

    @rx.event
    def set_usd(self, value: str) -> None:
        self._set("usd_input", value)

    @rx.event
    def set_limit(self, value: str) -> None:
        self._set("limit_input", value)

    @rx.event
    def set_expiry(self, value: str) -> None:
        self._set("expiry", value, tuple(rules.EXPIRY_CHOICES))

    @rx.event
    @signed_in
    def review(self, principal: Principal) -> None:
        """Validate exactly as the API would; open the confirmation with the exact amounts."""
        self.ticket_errors = {}
        try:
            trading.parse_order_request(self._order_data())
        except DomainError as exc:
            self._refused(exc)
            return
        self._update_preview(principal.username)
        if self.preview.get("ready") != "yes":
            self.ticket_errors = {"form": "Enter a quantity and price to see the order total."}
            return
        self._pending_key = uuid.uuid4().hex
        self.confirming = True

    @rx.event
    def cancel_review(self) -> None:
        self.confirming = False
        self._pending_key = ""

    @rx.event
    @signed_in
    def confirm(self, principal: Principal) -> rx.event.EventSpec | None:
        if not self.confirming or not self._pending_key or self.submitting:
            return None
        self.submitting = True
        try:
            # The key makes a double click or a retried request place one order, not two.
            order = trading.place_order(principal.username, self._order_data(), self._pending_key)
        except DomainError as exc:
            self._refused(exc)
            self.confirming = False
            self.submitting = False
            return None
        activity.record_ui_event("order", principal.username)
        self.confirming = False
        self.submitting = False
        self._pending_key = ""
        self.quantity_input = ""
        self.usd_input = ""
        self._load_orders(principal.username)
        self._update_preview(principal.username)
        amount = f"{formatting.quantity(order.quantity)} {order.asset_id}"
        if order.status == OrderStatus.COMPLETED:
            verb = "Bought" if order.is_buy else "Sold"
            return rx.toast.success(f"{verb} {amount} at {formatting.usd(order.price)}")
        label = OrderType(order.order_type).label
        return rx.toast.success(f"{label} order placed for {amount} at {formatting.usd(order.limit_price)}")

    @rx.event
    @signed_in
    def cancel_order(self, principal: Principal, order_id: str) -> rx.event.EventSpec:
        try:
            trading.cancel_order(principal.username, order_id)
        except DomainError as exc:
            self._load_orders(principal.username)
            return rx.toast.error(exc.message)
        self._load_orders(principal.username)
        self._update_preview(principal.username)
        return rx.toast.info("Order cancelled; its hold is released")

    @rx.event
    def dismiss_notice(self) -> None:
        self.notice = ""

    def _on_prices(self) -> list[rx.event.EventSpec] | None:
        """Live push: new market price in the preview, and a toast plus a notice per filled order."""
        if not self.live or not self.username:
            return None
        before = set(self._pending_ids)
        self._load_orders(self.username)
        self._update_preview(self.username)
        toasts = []
        for order_id in sorted(before - set(self._pending_ids)):
            o = trading.get_order(self.username, order_id)
            label = OrderType(o.order_type).label.lower()
            if o.status == OrderStatus.COMPLETED:
                amount = f"{formatting.quantity(o.quantity)} {o.asset_id}"
                self.notice = f"Your {label} of {amount} filled at {formatting.usd(o.price)}"
                toasts.append(rx.toast.success(self.notice))
            elif o.status == OrderStatus.EXPIRED:
                toasts.append(rx.toast.info(f"Your {label} order for {o.asset_id} expired"))
        return toasts


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
        self.live = True

    @rx.event
    @signed_in
    def set_history_range(self, principal: Principal, value: str | list[str]) -> None:
        if is_range(value):
            self.history_range = str(value)
            self._fill(principal.username)

    def _on_prices(self) -> None:
        if self.live and self.username:
            self._fill(self.username)


class PortfolioState(PortfolioMixin, AuthState):
    pass


class OrdersState(PagerMixin, AuthState):
    orders: list[OrderRow] = []
    status_filter: str = ANY
    type_filter: str = ANY
    asset_filter: str = ""
    loading: bool = True
    live: bool = False
    error: str = ""

    def _load_page(self, username: str) -> None:
        self.error = ""
        try:
            rows, more = trading.list_orders(
                username,
                asset_id=self.asset_filter or None,
                order_type=None if self.type_filter == ANY else self.type_filter,
                status=None if self.status_filter == ANY else self.status_filter,
                limit=ORDERS_PAGE_SIZE,
                offset=self.page * ORDERS_PAGE_SIZE,
            )
        except DomainError as exc:
            self.error = exc.message
            rows, more = [], False
        self.orders = [_order_row(o) for o in rows]
        self.has_more = more
        self.loading = False

    @rx.event
    @signed_in
    def load(self, principal: Principal) -> None:
        self._first_page(principal.username)
        self.live = True

    @rx.event
    @signed_in
    def set_status_filter(self, principal: Principal, value: str) -> None:
        self.status_filter = value if value in values(OrderStatus) else ANY
        self._first_page(principal.username)

    @rx.event
    @signed_in
    def set_type_filter(self, principal: Principal, value: str) -> None:
        self.type_filter = value if value in values(OrderType) else ANY
        self._first_page(principal.username)

    @rx.event
    @signed_in
    def set_asset_filter(self, principal: Principal, value: str) -> None:
        self.asset_filter = value.strip().upper()[:10]
        self._first_page(principal.username)

    def _on_prices(self) -> None:
        if self.live and self.username:
            self._load_page(self.username)


class DashboardState(PortfolioMixin, AuthState):
    recent: list[OrderRow] = []
    movers: list[MarketRow] = []

    def _fill(self, username: str) -> None:
        PortfolioMixin._fill(self, username)
        rows, _ = trading.list_orders(username, status=OrderStatus.COMPLETED, limit=5)
        self.recent = [_order_row(o) for o in rows]
        self.movers = top_movers()
