"""/admin/audit: the audit log with filters, pages and the CSV export."""

from __future__ import annotations

import reflex as rx

from cnop_app.components.admin import admin_page, empty, filter_form, num_pager, select_filter, text_filter
from cnop_app.pages.admin_users import audit_table
from cnop_app.state.admin_audit import AdminAuditState

L = AdminAuditState


def audit() -> rx.Component:
    return admin_page(
        "audit",
        filter_form(
            L,
            text_filter("User", "user", L.f_user, "affected user"),
            text_filter("Actor", "actor", L.f_actor, "who acted"),
            select_filter("Event type", "event_type", L.event_types, L.f_type),
            text_filter("From", "since", L.f_since, type="date", width="160px"),
            text_filter("To", "until", L.f_until, type="date", width="160px"),
            key=L.f_user + L.f_actor + L.f_type + L.f_since + L.f_until,
            extra=rx.button(
                rx.icon("download", size=14),
                "CSV",
                type="button",
                variant="soft",
                on_click=L.export_csv,
                disabled=L.total == 0,
                id="audit-export",
                aria_label="Download the matching events as CSV",
            ),
        ),
        rx.cond(L.error != "", rx.callout(L.error, icon="triangle-alert", color_scheme="red", margin_bottom="1em")),
        rx.cond(
            L.loading,
            rx.skeleton(height="300px", width="100%"),
            rx.cond(L.rows.length() == 0, empty("No audit events match.", id="audit-empty"), audit_table(L.rows)),
        ),
        num_pager(L, id_prefix="audit"),
        title="Audit log",
    )
