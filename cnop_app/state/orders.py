"""Order history: filtered, newest-first pages of the user's orders."""

from __future__ import annotations

import reflex as rx

from cnop_app.domain.enums import OrderStatus, OrderType, values
from cnop_app.domain.errors import DomainError
from cnop_app.services import trading
from cnop_app.services.auth import Principal
from cnop_app.state.auth import AuthState, signed_in
from cnop_app.state.pager import PagerMixin
from cnop_app.state.rows import OrderRow
from cnop_app.state.trading_common import order_row

ANY = "all"  # the filters' "no filter" choice
ORDERS_PAGE_SIZE = 25


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
        self.orders = [order_row(o) for o in rows]
        self.has_more = more
        self.loading = False

    @rx.event
    @signed_in
    def load(self, principal: Principal) -> None:
        self._first_page(principal.username)
        self._follow_prices()

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

    def _on_prices(self, principal: Principal | None) -> None:
        if self.live and principal is not None:
            self._load_page(principal.username)
