"""/admin/audit: the audit log with filters, pages and a CSV export of what the filters match."""

from __future__ import annotations

import reflex as rx

from cnop_app.domain.errors import DomainError
from cnop_app.services import admin
from cnop_app.services.auth import Principal
from cnop_app.state.admin_base import ADMIN_PAGE_SIZE, AdminMixin, AdminPagerMixin, admin_required, text_of
from cnop_app.state.admin_rows import AuditRow, audit_row
from cnop_app.state.auth import AuthState

ANY = ""
# The export goes to the browser over its websocket: past this, narrow the filters (or use the API).
MAX_EXPORT_ROWS = 20_000


class AdminAuditState(AdminPagerMixin, AdminMixin, AuthState):
    rows: list[AuditRow] = []
    loading: bool = True
    event_types: list[str] = []
    f_user: str = ""
    f_actor: str = ""
    f_type: str = ANY
    f_since: str = ""
    f_until: str = ""

    def _filters(self) -> admin.AuditFilters:
        return admin.audit_filters(
            username=self.f_user, actor=self.f_actor, event_type=self.f_type, since=self.f_since, until=self.f_until
        )

    def _load_page(self, principal: Principal) -> None:
        self.error = ""
        try:
            result = admin.search_audit(
                self._ctx(principal), self._filters(), limit=ADMIN_PAGE_SIZE, offset=self._offset()
            )
        except DomainError as exc:
            self.error = exc.message
            self.rows, self.total = [], 0
        else:
            self.rows = [audit_row(a) for a in result.rows]
            self.total = result.total
        self.loading = False

    @rx.event
    @admin_required
    def load(self, principal: Principal) -> None:
        query = self.router.url.query_parameters
        # /admin/audit?user=alice (the user page links here) filters by that user.
        self.f_user = query.get("user", "")[:30]
        self.f_actor = self.f_type = self.f_since = self.f_until = ""
        self.event_types = admin.event_types(self._ctx(principal))
        self.page = 0
        self._load_page(principal)

    @rx.event
    @admin_required
    def apply_filters(self, principal: Principal, form: dict) -> None:
        self.f_user = text_of(form, "user", 30)
        self.f_actor = text_of(form, "actor", 30)
        self.f_type = text_of(form, "event_type", 40)
        self.f_since = text_of(form, "since", 40)
        self.f_until = text_of(form, "until", 40)
        self.page = 0
        self._load_page(principal)

    @rx.event
    @admin_required
    def clear_filters(self, principal: Principal) -> None:
        self.f_user = self.f_actor = self.f_type = self.f_since = self.f_until = ""
        self.page = 0
        self._load_page(principal)

    @rx.event
    @admin_required
    def export_csv(self, principal: Principal) -> rx.event.EventSpec:
        """What the current filters match, oldest first, as a file download."""
        ctx = self._ctx(principal)
        try:
            filters = self._filters()
            matching = admin.search_audit(ctx, filters, limit=1).total
            if matching > MAX_EXPORT_ROWS:
                return rx.toast.warning(
                    f"{matching:,} events match: narrow the filters to at most {MAX_EXPORT_ROWS:,} "
                    "(or use GET /api/v1/admin/audit.csv)"
                )
            text = "".join(admin.audit_csv(ctx, filters))
        except DomainError as exc:
            return rx.toast.error(exc.message)
        return rx.download(data=text, filename="cnop-audit.csv")
