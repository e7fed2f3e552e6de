"""/admin: the system overview, live (pushed after each price refresh and polled every few seconds
while the page is open), and the ledger integrity check."""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from cnop_app import formatting, scheduler
from cnop_app.domain.timeutil import parse_iso, utcnow
from cnop_app.services import admin, auth
from cnop_app.services.auth import Principal
from cnop_app.state.admin_base import ADMINS_ONLY, CUSTOMER_HOME, AdminMixin, admin_background, admin_required
from cnop_app.state.admin_rows import (
    DifferenceRow,
    ErrorRow,
    IntegritySummary,
    OverviewFigures,
    count,
    counted,
    seconds_text,
    size_text,
)
from cnop_app.state.auth import AuthState

OVERVIEW_PATH = "/admin"
POLL_SECONDS = 5.0
# A forgotten tab stops polling after an hour (a reload starts again); navigation or a closed
# connection ends it at the next tick.
POLL_TICKS = 720
BREAKER_COLOURS = {"closed": "green", "half_open": "amber", "open": "red"}


def _feed(feed: dict[str, Any]) -> dict[str, str]:
    as_of = parse_iso(feed.get("as_of"))
    if feed.get("stale"):
        label, colour = "stale", "amber"
    elif feed.get("source") == "snapshot":
        label, colour = "offline prices", "gray"
    else:
        label, colour = "live", "green"
    breaker = (feed.get("breaker") or {}).get("state", "")
    next_at = feed.get("next_refresh_at")
    return {
        "feed_source": str(feed.get("source") or "—"),
        "feed_label": label,
        "feed_colour": colour,
        "feed_as_of": formatting.relative_time(as_of),
        "feed_as_of_exact": formatting.utc_exact(as_of),
        "feed_breaker": breaker.replace("_", " ") or "—",
        "feed_breaker_colour": BREAKER_COLOURS.get(breaker, "gray"),
        "feed_outcome": str(feed.get("last_outcome") or "—"),
        "feed_error": str(feed.get("last_error") or ""),
        "feed_failures": count(feed.get("consecutive_failures")),
        "feed_mode": str(feed.get("mode") or "—"),
        "feed_interval": seconds_text(feed.get("interval_seconds")),
        "feed_next": _until(next_at),
        "feed_next_exact": formatting.utc_exact(next_at),
    }


def _until(moment: Any) -> str:
    if moment is None:
        return "—"
    seconds = (moment - utcnow()).total_seconds()
    return "due now" if seconds < 1 else f"in {seconds_text(seconds)}"


def _mirror(health: dict[str, Any]) -> dict[str, str]:
    if not health.get("enabled"):
        return {"mirror_enabled": "", "mirror_status": "off", "mirror_colour": "gray"}
    status = str(health.get("status") or "—")
    return {
        "mirror_enabled": "yes",
        "mirror_status": status,
        "mirror_colour": "green" if status == "ok" else "amber",
        "mirror_depth": count(health.get("outbox_depth")),
        "mirror_lag": seconds_text(health.get("oldest_undrained_age_seconds")),
        "mirror_failing": count(health.get("failing_rows")),
        "mirror_reachable": "yes" if health.get("dynamodb_reachable") else "no",
        "mirror_error": str(health.get("last_error") or ""),
    }


def figures(view: admin.SystemOverview) -> OverviewFigures:
    u, o = view.users, view.orders
    return OverviewFigures(
        generated=formatting.utc_exact(view.generated_at),
        users_hint=f"{u.new_today:,} new today · {u.disabled:,} disabled",
        active_hint=f"{u.signed_in:,} signed in",
        sessions_hint=counted(u.admins, "active admin"),
        orders_hint=counted(o.fills_today, "fill"),
        users_total=count(u.total),
        users_active_now=count(u.active_now),
        users_signed_in=count(u.signed_in),
        users_new_today=count(u.new_today),
        users_disabled=count(u.disabled),
        users_admins=count(u.admins),
        sessions_open=count(view.open_sessions),
        orders_today=count(o.today),
        fills_today=count(o.fills_today),
        volume_today=formatting.usd(o.volume_today),
        open_limit_orders=count(o.open_limit_orders),
        db_backend=view.database.backend,
        db_size=size_text(view.database.size_bytes),
        **_feed(view.price_feed),  # type: ignore[typeddict-item]
        **_mirror(view.mirror),  # type: ignore[typeddict-item]
    )


def error_rows(view: admin.SystemOverview) -> list[ErrorRow]:
    return [
        ErrorRow(
            when=formatting.relative_time(e.at),
            exact=formatting.utc_exact(e.at),
            logger=e.logger,
            message=e.message,
            error=e.error or "",
            request_id=e.request_id or "",
        )
        for e in view.recent_errors
    ]


def _overview(ctx: admin.AdminContext) -> admin.SystemOverview:
    # Without the integrity check: it reads the whole ledger, so it runs on load and on request only.
    return admin.system_overview(ctx, include_integrity=False, due_at=scheduler.due_at)


class AdminOverviewState(AdminMixin, AuthState):
    loading: bool = True
    live: bool = False
    figures: OverviewFigures = {}
    errors: list[ErrorRow] = []
    integrity: IntegritySummary = {}
    differences: list[DifferenceRow] = []
    checking: bool = False
    # Each load starts a new poll and ends the previous one of this tab.
    _poll_generation: int = 0

    def _apply(self, view: admin.SystemOverview) -> None:
        self.figures = figures(view)
        self.errors = error_rows(view)
        self.loading = False

    def _apply_integrity(self, report: admin.IntegrityReport) -> None:
        lines = report.lines()
        self.integrity = IntegritySummary(
            ok="yes" if report.ok else "",
            ran="yes",
            summary=lines[-1].split(";")[0],
            counts=lines[-1].split(";", 1)[-1].strip(),
            checked=formatting.utc_exact(report.checked_at),
        )
        self.differences = [
            DifferenceRow(
                where=f"{d.username}/{d.asset_id}" if d.asset_id else d.username,
                figure=d.figure.replace("_", " "),
                stored="missing" if d.stored is None else str(d.stored),
                expected="missing" if d.expected is None else str(d.expected),
                note=d.note,
            )
            for d in report.differences
        ]

    @rx.event
    @admin_required
    def load(self, principal: Principal) -> rx.event.EventHandler:
        ctx = self._ctx(principal)
        self._apply(_overview(ctx))
        self._apply_integrity(admin.verify_ledger())
        self._follow_prices()
        return AdminOverviewState.poll

    @rx.event
    @admin_required
    def run_integrity_check(self, principal: Principal) -> rx.event.EventSpec:
        report = admin.verify_ledger()
        self._apply_integrity(report)
        if report.ok:
            return rx.toast.success("Integrity check: every balance and holding matches")
        return rx.toast.error(f"Integrity check: {len(report.differences)} difference(s)")

    @rx.event(background=True)
    @admin_background
    async def poll(self, principal: Principal) -> Any:
        """Fresh figures every POLL_SECONDS while this tab shows /admin as an admin."""
        async with self:
            self._poll_generation += 1
            generation = self._poll_generation
        for _ in range(POLL_TICKS):
            await asyncio.sleep(POLL_SECONDS)
            async with self:
                if generation != self._poll_generation or not self.live:
                    return None
                if (self.router.url.path or "").rstrip("/") != OVERVIEW_PATH:
                    self.live = False
                    return None
                checked = self._live_admin()
                if not isinstance(checked, auth.Principal):
                    return checked
                ctx = self._ctx(checked)
            view = await asyncio.to_thread(_overview, ctx)
            async with self:
                if generation == self._poll_generation and self.live:
                    self._apply(view)
        return None

    def _live_admin(self) -> Principal | list[rx.event.EventSpec]:
        """The verified admin of a push or poll, or the events that end this tab's console."""
        principal = self._principal()
        if principal is not None and principal.is_admin:
            return principal
        self.reset()
        if principal is None:
            return self._session_ended(OVERVIEW_PATH)
        return [rx.toast.error(ADMINS_ONLY), rx.redirect(CUSTOMER_HOME)]

    def _on_prices(self, principal: Principal | None) -> list[rx.event.EventSpec] | None:
        """Called by the live push after a refresh (not an event: the browser cannot trigger it)."""
        if not self.live:
            return None
        if principal is None or not principal.is_admin:
            self.reset()
            # A signed-out tab was already sent to the login page by the push.
            return None if principal is None else [rx.toast.error(ADMINS_ONLY), rx.redirect(CUSTOMER_HOME)]
        self._apply(_overview(self._ctx(principal)))
        return None
