"""/admin/assets: the catalogue with trading on/off per asset, price staleness, and "refresh prices now"."""

from __future__ import annotations

import asyncio

import reflex as rx

from cnop_app import formatting, scheduler
from cnop_app.api.logos import logo_url
from cnop_app.domain.errors import DomainError
from cnop_app.services import admin
from cnop_app.services.auth import Principal
from cnop_app.state.admin_base import AdminMixin, admin_required
from cnop_app.state.admin_rows import AdminAssetRow, count
from cnop_app.state.auth import AuthState
from cnop_app.state.market import snapshot

REFRESH_ACTION = "refresh"
TOGGLE_ACTION = "toggle"
REFRESH_OUTCOMES = {
    "ok": "Prices refreshed",
    "busy": "Another refresh is running; try again in a moment",
    "breaker_open": "The feed's circuit breaker is open: no call was made",
    "backoff": "The feed is backing off after failures: no call was made",
}


def asset_row(a: admin.AdminAsset) -> AdminAssetRow:
    return AdminAssetRow(
        id=a.asset_id,
        name=a.name,
        image=logo_url(a.asset_id),  # CNOP's cached copy, or "" (letter avatar): no third-party request
        active="yes" if a.is_active else "",
        price=formatting.usd(a.price_usd),
        rank=str(a.market_cap_rank or "—"),
        source=a.source or "—",
        updated=formatting.relative_time(a.last_updated),
        updated_exact=formatting.utc_exact(a.last_updated),
        stale="yes" if a.stale else "",
        open_orders=count(a.open_orders),
    )


class AdminAssetsState(AdminMixin, AuthState):
    rows: list[AdminAssetRow] = []
    loading: bool = True
    search: str = ""
    inactive_only: bool = False
    # The toggle waiting for its reason: the asset's name and the state it goes to.
    pending_name: str = ""
    pending_enable: bool = False
    pending_open_orders: str = ""

    def _fill(self, principal: Principal) -> None:
        self.error = ""
        try:
            assets = admin.list_assets(self._ctx(principal))
        except DomainError as exc:
            self.error = exc.message
            assets = []
        needle = self.search.lower()
        self.rows = [
            asset_row(a)
            for a in assets
            if (not needle or needle in a.asset_id.lower() or needle in a.name.lower())
            and (not self.inactive_only or not a.is_active)
        ]
        self.loading = False

    @rx.event
    @admin_required
    def load(self, principal: Principal) -> None:
        self._close_action()
        self._fill(principal)

    @rx.event
    @admin_required
    def set_search(self, principal: Principal, value: str) -> None:
        self.search = value.strip()[:40] if isinstance(value, str) else ""
        self._fill(principal)

    @rx.event
    @admin_required
    def set_inactive_only(self, principal: Principal, value: bool) -> None:
        self.inactive_only = bool(value)
        self._fill(principal)

    @rx.event
    @admin_required
    def ask_toggle(self, principal: Principal, asset_id: str) -> None:
        row = next((r for r in self.rows if r["id"] == asset_id), None)
        if row is None:
            return
        self.pending = TOGGLE_ACTION
        self.pending_target = row["id"]
        self.pending_name = row["name"]
        self.pending_enable = row["active"] != "yes"
        self.pending_open_orders = row["open_orders"]
        self.action_error = ""

    @rx.event
    @admin_required
    def ask_refresh(self, principal: Principal) -> None:
        self.pending = REFRESH_ACTION
        self.pending_target = "market"
        self.action_error = ""

    @rx.event
    @admin_required
    async def confirm(self, principal: Principal, form: dict) -> rx.event.EventSpec | None:
        reason = form.get("reason", "")
        ctx = self._ctx(principal)
        if self.pending == TOGGLE_ACTION and self.pending_target:
            try:
                change = admin.set_trading(ctx, self.pending_target, self.pending_enable, reason)
            except DomainError as exc:
                self.action_error = exc.message
                return None
            snapshot.invalidate()  # this process's market rows show the change at once
            verb = "on" if change.asset.is_active else "off"
            message = f"Trading in {change.asset.asset_id} is {verb}" if change.changed else "Nothing changed"
        elif self.pending == REFRESH_ACTION:
            try:
                result = await asyncio.to_thread(admin.refresh_prices_now, ctx, reason, scheduler.run_refresh_once)
            except DomainError as exc:
                self.action_error = exc.message
                return None
            snapshot.invalidate()
            self._close_action()
            self._fill(principal)
            text = REFRESH_OUTCOMES.get(result.outcome, f"Refresh: {result.outcome}")
            if result.outcome == "ok":
                return rx.toast.success(f"{text}: {count(result.stored)} price(s) stored")
            return rx.toast.warning(f"{text}{': ' + result.error if result.error else ''}")
        else:
            return None
        self._close_action()
        self._fill(principal)
        return rx.toast.success(message)
