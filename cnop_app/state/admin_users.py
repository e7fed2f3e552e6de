"""/admin/users (search, sort, pages) and /admin/users/<username> (everything about one user, and the
actions on them: each confirmed in a dialog with a required reason)."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import unquote

import reflex as rx

from cnop_app import formatting
from cnop_app.domain.admin import USER_SORTS
from cnop_app.domain.enums import Role, values
from cnop_app.domain.errors import DomainError
from cnop_app.services import admin, portfolio
from cnop_app.services.auth import Principal
from cnop_app.state.account import ledger_row
from cnop_app.state.admin_base import ADMIN_PAGE_SIZE, AdminMixin, AdminPagerMixin, admin_required, text_of
from cnop_app.state.admin_rows import AdminUserRow, AuditRow, UserProfile, audit_row
from cnop_app.state.auth import AuthState
from cnop_app.state.rows import HoldingRow, LedgerRow, OrderRow, SessionRow
from cnop_app.state.trading_common import order_row

DETAIL_PAGE_SIZE = 10
# action -> (dialog title, confirm button label)
USER_ACTIONS: dict[str, tuple[str, str]] = {
    "disable": ("Disable this user", "Disable and sign out"),
    "enable": ("Enable this user", "Enable"),
    "sign_out": ("Sign out everywhere", "Sign out every session"),
    "role": ("Change role", "Change role"),
    "throttle": ("Clear login throttling", "Clear counters"),
    "adjust": ("Adjust cash", "Post adjustment"),
}


def user_row(u: admin.AdminUser) -> AdminUserRow:
    return AdminUserRow(
        username=u.username,
        name=f"{u.first_name} {u.last_name}".strip(),
        email=u.email,
        role=u.role,
        active="yes" if u.is_active else "",
        created=formatting.relative_time(u.created_at),
        created_exact=formatting.utc_exact(u.created_at),
        cash=formatting.usd(u.cash),
        available=formatting.usd(u.available_cash),
    )


class AdminUsersState(AdminPagerMixin, AdminMixin, AuthState):
    rows: list[AdminUserRow] = []
    query: str = ""
    sort_key: str = "username"
    sort_desc: bool = False
    loading: bool = True

    def _load_page(self, principal: Principal) -> None:
        self.error = ""
        sort = f"-{self.sort_key}" if self.sort_desc else self.sort_key
        try:
            result = admin.search_users(
                self._ctx(principal), self.query or None, sort=sort, limit=ADMIN_PAGE_SIZE, offset=self._offset()
            )
        except DomainError as exc:
            self.error = exc.message
            self.rows, self.total = [], 0
        else:
            self.rows = [user_row(u) for u in result.rows]
            self.total = result.total
        self.loading = False

    @rx.event
    @admin_required
    def load(self, principal: Principal) -> None:
        self.page = 0
        self._load_page(principal)

    @rx.event
    @admin_required
    def set_query(self, principal: Principal, value: str) -> None:
        self.query = value.strip()[:100] if isinstance(value, str) else ""
        self.page = 0
        self._load_page(principal)

    @rx.event
    @admin_required
    def sort_by(self, principal: Principal, key: str) -> None:
        if key not in USER_SORTS:
            return
        if key == self.sort_key:
            self.sort_desc = not self.sort_desc
        else:
            self.sort_key, self.sort_desc = key, key == "created_at"
        self.page = 0
        self._load_page(principal)


def _holding_row(v: portfolio.HoldingView) -> HoldingRow:
    return HoldingRow(
        id=v.asset_id,
        name=v.name,
        quantity=formatting.quantity(v.quantity),
        held=formatting.quantity(v.held_quantity),
        avg_cost=formatting.usd(v.average_cost),
        price=formatting.usd(v.current_price),
        value=formatting.usd(v.market_value),
        cost_basis=formatting.usd(v.cost_basis),
        pnl=formatting.usd(v.unrealized_pnl),
        pnl_pct=formatting.percent(v.unrealized_pnl_percent),
        pnl_dir=formatting.direction(v.unrealized_pnl),
        realized=formatting.usd(v.realized_pnl),
        allocation=formatting.percent(v.allocation_percent).lstrip("+"),
    )


class AdminUserState(AdminMixin, AuthState):
    """One user. `target` is read from the URL path (the browser cannot set it otherwise)."""

    target: str = ""
    found: bool = True
    loading: bool = True
    profile: UserProfile = {}
    holdings: list[HoldingRow] = []
    open_orders: list[OrderRow] = []
    ledger: list[LedgerRow] = []
    ledger_page: int = 0
    ledger_total: int = 0
    sessions: list[SessionRow] = []
    audit: list[AuditRow] = []
    audit_page: int = 0
    audit_total: int = 0
    pending_title: str = ""
    pending_confirm: str = ""

    @rx.var
    def ledger_pages(self) -> int:
        return max(1, (self.ledger_total + DETAIL_PAGE_SIZE - 1) // DETAIL_PAGE_SIZE)

    @rx.var
    def audit_pages(self) -> int:
        return max(1, (self.audit_total + DETAIL_PAGE_SIZE - 1) // DETAIL_PAGE_SIZE)

    def _fill(self, principal: Principal) -> None:
        try:
            detail = admin.user_detail(
                self._ctx(principal),
                self.target,
                ledger_limit=DETAIL_PAGE_SIZE,
                ledger_offset=self.ledger_page * DETAIL_PAGE_SIZE,
                audit_limit=DETAIL_PAGE_SIZE,
                audit_offset=self.audit_page * DETAIL_PAGE_SIZE,
            )
        except DomainError:
            self.found = False
            self.loading = False
            return
        u, t = detail.user, detail.portfolio.totals
        self.profile = UserProfile(
            username=u.username,
            name=f"{u.first_name} {u.last_name}".strip(),
            email=u.email,
            phone=u.phone or "—",
            date_of_birth=u.date_of_birth.isoformat() if u.date_of_birth else "—",
            role=u.role,
            active="yes" if u.is_active else "",
            created=formatting.relative_time(u.created_at),
            created_exact=formatting.utc_exact(u.created_at),
            updated_exact=formatting.utc_exact(u.updated_at),
            cash=formatting.usd(u.cash),
            held=formatting.usd(u.held_cash),
            available=formatting.usd(u.available_cash),
            equity=formatting.usd(t.total_equity),
            holdings_value=formatting.usd(t.holdings_value),
            unrealized=formatting.usd(t.unrealized_pnl),
            unrealized_dir=formatting.direction(t.unrealized_pnl),
            realized=formatting.usd(t.realized_pnl),
            blocked_until=formatting.utc_exact(detail.login_blocked_until) if detail.login_blocked_until else "",
        )
        self.holdings = [_holding_row(h) for h in detail.portfolio.holdings if h.quantity > Decimal(0)]
        self.open_orders = [order_row(o) for o in detail.open_orders]
        self.ledger = [ledger_row(r) for r in detail.ledger]
        self.ledger_total = detail.ledger_total
        self.sessions = [
            SessionRow(
                id=s.jti,
                issued=formatting.relative_time(s.issued_at),
                exact=formatting.utc_exact(s.issued_at),
                agent=(s.user_agent or "unknown client")[:80],
                ip=s.ip or "—",
                current="",
            )
            for s in detail.sessions
        ]
        self.audit = [audit_row(a) for a in detail.audit]
        self.audit_total = detail.audit_total
        self.found = True
        self.loading = False

    @rx.event
    @admin_required
    def load(self, principal: Principal) -> None:
        segments = [part for part in (self.router.url.path or "").split("/") if part]
        self.target = unquote(segments[2])[:30] if len(segments) >= 3 else ""
        self.ledger_page = self.audit_page = 0
        self._close_action()
        self.loading = True
        self._fill(principal)

    @rx.event
    @admin_required
    def ledger_next(self, principal: Principal) -> None:
        if (self.ledger_page + 1) * DETAIL_PAGE_SIZE < self.ledger_total:
            self.ledger_page += 1
            self._fill(principal)

    @rx.event
    @admin_required
    def ledger_prev(self, principal: Principal) -> None:
        if self.ledger_page > 0:
            self.ledger_page -= 1
            self._fill(principal)

    @rx.event
    @admin_required
    def audit_next(self, principal: Principal) -> None:
        if (self.audit_page + 1) * DETAIL_PAGE_SIZE < self.audit_total:
            self.audit_page += 1
            self._fill(principal)

    @rx.event
    @admin_required
    def audit_prev(self, principal: Principal) -> None:
        if self.audit_page > 0:
            self.audit_page -= 1
            self._fill(principal)

    @rx.event
    @admin_required
    def ask(self, principal: Principal, action: str) -> None:
        """Open the confirmation of `action` (nothing changes yet)."""
        if action not in USER_ACTIONS or not self.found:
            return
        self.pending = action
        self.pending_target = self.target
        self.pending_title, self.pending_confirm = USER_ACTIONS[action]
        self.action_error = ""

    @rx.event
    @admin_required
    def confirm(self, principal: Principal, form: dict) -> rx.event.EventSpec | None:
        action, name = self.pending, self.pending_target
        if action not in USER_ACTIONS or not name:
            return None
        ctx = self._ctx(principal)
        reason = form.get("reason", "")
        try:
            if action == "disable":
                message = admin.disable_user(ctx, name, reason).message
            elif action == "enable":
                message = admin.enable_user(ctx, name, reason).message
            elif action == "sign_out":
                message = admin.sign_out_everywhere(ctx, name, reason).message
            elif action == "throttle":
                message = admin.clear_login_throttling(ctx, name, reason).message
            elif action == "role":
                role = text_of(form, "role", 20)
                message = admin.change_role(ctx, name, role if role in values(Role) else "", reason).message
            else:
                result = admin.adjust_cash(ctx, name, text_of(form, "amount", 40), reason)
                message = f"{formatting.usd(result.entry.amount)} posted; cash now {formatting.usd(result.user.cash)}"
        except DomainError as exc:
            self.action_error = exc.message
            return None
        self._close_action()
        self._fill(principal)
        return rx.toast.success(message)
