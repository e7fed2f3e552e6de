"""Newest-first paging, written once for every paged list (orders, ledger history)."""

from __future__ import annotations

import reflex as rx

from cnop_app.services.auth import Principal
from cnop_app.state.auth import signed_in


class PagerMixin(rx.State, mixin=True):
    """`page` is 0 for the newest rows; the state fills `has_more` in `_load_page`.

    Mixed into states that also derive from `AuthState` (each page's events then run on its own state)."""

    page: int = 0
    has_more: bool = False

    @rx.var
    def has_prev(self) -> bool:
        return self.page > 0

    def _load_page(self, username: str) -> None:
        raise NotImplementedError

    def _first_page(self, username: str) -> None:
        self.page = 0
        self._load_page(username)

    @rx.event
    @signed_in
    def first_page(self, principal: Principal) -> None:
        self._first_page(principal.username)

    @rx.event
    @signed_in
    def next_page(self, principal: Principal) -> None:
        """Older rows."""
        if self.has_more:
            self.page += 1
            self._load_page(principal.username)

    @rx.event
    @signed_in
    def prev_page(self, principal: Principal) -> None:
        """Newer rows."""
        if self.page > 0:
            self.page -= 1
            self._load_page(principal.username)
