"""The trade ticket with a live preview, a confirmation step and the open orders: a thin adapter over services."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import reflex as rx

from cnop_app import formatting
from cnop_app.config import get_settings
from cnop_app.domain import trading as rules
from cnop_app.domain.enums import OrderStatus, OrderType
from cnop_app.domain.errors import DomainError
from cnop_app.services import accounts, activity, market, portfolio, trading
from cnop_app.services.auth import Principal
from cnop_app.state.auth import AuthState, signed_in
from cnop_app.state.market import snapshot
from cnop_app.state.rows import AssetOption, OrderRow, TicketErrors, TicketPreview, error_for
from cnop_app.state.trading_common import order_row

# The ticket's toggles; together they name an OrderType (`OrderType.of(kind, side)`).
SIDES = ("buy", "sell")
KINDS = ("market", "limit")
AMOUNT_MODES = ("quantity", "usd")


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
        self.open_orders = [order_row(o) for o in rows]
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
        self._follow_prices()
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

    def _on_prices(self, principal: Principal | None) -> list[rx.event.EventSpec] | None:
        """Live push: new market price in the preview, and a toast plus a notice per filled order."""
        if not self.live or principal is None:
            return None
        username = principal.username
        before = set(self._pending_ids)
        self._load_orders(username)
        self._update_preview(username)
        toasts = []
        for order_id in sorted(before - set(self._pending_ids)):
            o = trading.get_order(username, order_id)
            label = OrderType(o.order_type).label.lower()
            if o.status == OrderStatus.COMPLETED:
                amount = f"{formatting.quantity(o.quantity)} {o.asset_id}"
                self.notice = f"Your {label} of {amount} filled at {formatting.usd(o.price)}"
                toasts.append(rx.toast.success(self.notice))
            elif o.status == OrderStatus.EXPIRED:
                toasts.append(rx.toast.info(f"Your {label} order for {o.asset_id} expired"))
        return toasts
