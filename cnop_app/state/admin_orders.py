"""/admin/orders: every user's orders with filters, and cancelling one on the user's behalf."""

from __future__ import annotations

import reflex as rx

from cnop_app.domain.enums import OrderStatus, OrderType, values
from cnop_app.domain.errors import DomainError
from cnop_app.services import admin
from cnop_app.services.auth import Principal
from cnop_app.state.admin_base import ADMIN_PAGE_SIZE, AdminMixin, AdminPagerMixin, admin_required, text_of
from cnop_app.state.admin_rows import AdminOrderRow, admin_order_row
from cnop_app.state.auth import AuthState

ANY = "all"
CANCEL_ACTION = "cancel"


class AdminOrdersState(AdminPagerMixin, AdminMixin, AuthState):
    rows: list[AdminOrderRow] = []
    loading: bool = True
    f_user: str = ""
    f_asset: str = ""
    f_type: str = ANY
    f_status: str = ANY
    f_since: str = ""
    f_until: str = ""
    pending_summary: str = ""

    def _load_page(self, principal: Principal) -> None:
        self.error = ""
        try:
            result = admin.list_orders(
                self._ctx(principal),
                username=self.f_user or None,
                asset_id=self.f_asset or None,
                order_type=None if self.f_type == ANY else self.f_type,
                status=None if self.f_status == ANY else self.f_status,
                since=self.f_since or None,
                until=self.f_until or None,
                limit=ADMIN_PAGE_SIZE,
                offset=self._offset(),
            )
        except DomainError as exc:
            self.error = exc.message
            self.rows, self.total = [], 0
        else:
            self.rows = [admin_order_row(o) for o in result.rows]
            self.total = result.total
        self.loading = False

    @rx.event
    @admin_required
    def load(self, principal: Principal) -> None:
        # /admin/orders?user=alice (the user page links here) filters by that user.
        self.f_user = self.router.url.query_parameters.get("user", "")[:30]
        self.page = 0
        self._close_action()
        self._load_page(principal)

    @rx.event
    @admin_required
    def apply_filters(self, principal: Principal, form: dict) -> None:
        self.f_user = text_of(form, "user", 30)
        self.f_asset = text_of(form, "asset", 10).upper()
        kind = text_of(form, "type", 20)
        self.f_type = kind if kind in values(OrderType) else ANY
        status = text_of(form, "status", 20)
        self.f_status = status if status in values(OrderStatus) else ANY
        self.f_since = text_of(form, "since", 40)
        self.f_until = text_of(form, "until", 40)
        self.page = 0
        self._load_page(principal)

    @rx.event
    @admin_required
    def clear_filters(self, principal: Principal) -> None:
        self.f_user = self.f_asset = self.f_since = self.f_until = ""
        self.f_type = self.f_status = ANY
        self.page = 0
        self._load_page(principal)

    @rx.event
    @admin_required
    def ask_cancel(self, principal: Principal, order_id: str) -> None:
        row = next((r for r in self.rows if r["id"] == order_id and r["pending"] == "yes"), None)
        if row is None:
            return
        self.pending = CANCEL_ACTION
        self.pending_target = row["id"]
        self.pending_summary = f"{row['type']} {row['quantity']} {row['asset']} at {row['price']} for {row['user']}"
        self.action_error = ""

    @rx.event
    @admin_required
    def confirm(self, principal: Principal, form: dict) -> rx.event.EventSpec | None:
        if self.pending != CANCEL_ACTION or not self.pending_target:
            return None
        try:
            view = admin.cancel_order(self._ctx(principal), self.pending_target, form.get("reason", ""))
        except DomainError as exc:
            self.action_error = exc.message
            return None
        self._close_action()
        self._load_page(principal)
        return rx.toast.success(f"Order {view.order_id[:8]} of {view.username} cancelled; its hold is released")
