"""/admin/users and /admin/users/<username>."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cnop_app.components.admin import (
    admin_page,
    badge_yes,
    empty,
    figure,
    header,
    line,
    num_pager,
    reason_dialog,
    table,
)
from cnop_app.components.figures import signed
from cnop_app.components.layout import SELECT_STYLE, TABULAR, label_for
from cnop_app.components.orders import orders_table
from cnop_app.domain.enums import Role
from cnop_app.state.admin_users import AdminUsersState, AdminUserState

U = AdminUsersState
D = AdminUserState
P = AdminUserState.profile


def _sort_header(label: str, key: str) -> rx.Component:
    return rx.table.column_header_cell(
        rx.button(
            label,
            rx.cond(
                U.sort_key == key,
                rx.cond(U.sort_desc, rx.icon("chevron-down", size=14), rx.icon("chevron-up", size=14)),
            ),
            variant="ghost",
            size="1",
            color_scheme="gray",
            on_click=U.sort_by(key),
            aria_label=f"Sort by {label}",
        )
    )


def _plain_header(label: str) -> rx.Component:
    """A header that does not sort, in the look of the sorting ones beside it."""
    return rx.table.column_header_cell(
        rx.text(label, size="1", weight="medium", color_scheme="gray"), text_align="right", vertical_align="middle"
    )


def _user_row(u: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(u["username"], href="/admin/users/" + u["username"].to(str), weight="medium")),
        rx.table.cell(u["name"]),
        rx.table.cell(u["email"]),
        rx.table.cell(rx.badge(u["role"], color_scheme=rx.cond(u["role"] == "admin", "violet", "gray"))),
        rx.table.cell(badge_yes(u["active"], "active", "disabled", no_colour="red")),
        rx.table.cell(rx.tooltip(rx.text(u["created"]), content=u["created_exact"])),
        rx.table.cell(u["cash"], text_align="right", style=TABULAR),
        rx.table.cell(u["available"], text_align="right", style=TABULAR),
        class_name="admin-user-row",
    )


def users() -> rx.Component:
    return admin_page(
        "users",
        rx.hstack(
            rx.input(
                rx.input.slot(rx.icon("search", size=16)),
                placeholder="Search username, email or name",
                default_value=U.query,
                on_change=U.set_query.debounce(300),
                aria_label="Search users",
                id="admin-user-search",
                width=rx.breakpoints(initial="100%", sm="320px"),
            ),
            margin_bottom="1em",
            width="100%",
        ),
        rx.cond(U.error != "", rx.callout(U.error, icon="triangle-alert", color_scheme="red", margin_bottom="1em")),
        rx.cond(
            U.loading,
            rx.skeleton(height="300px", width="100%"),
            rx.cond(
                U.rows.length() == 0,
                empty("No users match this search.", id="admin-users-empty"),
                table(
                    rx.table.header(
                        rx.table.row(
                            _sort_header("Username", "username"),
                            _sort_header("Name", "name"),
                            _sort_header("Email", "email"),
                            _sort_header("Role", "role"),
                            _sort_header("Status", "is_active"),
                            _sort_header("Joined", "created_at"),
                            _plain_header("Cash"),
                            _plain_header("Available"),
                        )
                    ),
                    rx.table.body(rx.foreach(U.rows, _user_row)),
                ),
            ),
        ),
        num_pager(U, id_prefix="admin-users"),
        title="Users",
    )


# ---------------------------------------------------------------- one user


def _action_button(label: str, action: str, icon: str, colour: str = "gray", **props: Any) -> rx.Component:
    return rx.button(
        rx.icon(icon, size=14),
        label,
        size="2",
        variant="soft",
        color_scheme=colour,
        on_click=D.ask(action),
        id=f"action-{action.replace('_', '-')}",
        **props,
    )


def _actions() -> rx.Component:
    return rx.hstack(
        rx.cond(
            P["active"] == "yes",
            _action_button("Disable", "disable", "user-x", "red"),
            _action_button("Enable", "enable", "user-check", "green"),
        ),
        _action_button("Sign out everywhere", "sign_out", "log-out"),
        _action_button("Change role", "role", "shield"),
        _action_button("Clear login throttling", "throttle", "timer-reset"),
        _action_button("Adjust cash", "adjust", "circle-dollar-sign", "indigo"),
        spacing="2",
        wrap="wrap",
    )


def _dialog_fields() -> rx.Component:
    return rx.match(
        D.pending,
        (
            "role",
            rx.vstack(
                label_for("New role", "action-role"),
                rx.el.select(
                    rx.el.option("customer", value=Role.CUSTOMER.value),
                    rx.el.option("admin", value=Role.ADMIN.value),
                    id="action-role",
                    name="role",
                    default_value=rx.cond(P["role"] == "admin", "customer", "admin"),
                    style=SELECT_STYLE,
                ),
                spacing="1",
                width="100%",
            ),
        ),
        (
            "adjust",
            rx.vstack(
                label_for("Amount (USD; negative to debit)", "action-amount"),
                rx.input(
                    id="action-amount",
                    name="amount",
                    placeholder="e.g. 250.00 or -100",
                    input_mode="decimal",
                    required=True,
                    width="100%",
                ),
                rx.text(
                    "Cash now ",
                    P["cash"],
                    ", of which ",
                    P["held"],
                    " is held by open orders: a debit cannot go below the held cash.",
                    size="1",
                    color_scheme="gray",
                ),
                spacing="1",
                width="100%",
            ),
        ),
        rx.fragment(),
    )


def _dialog_description() -> rx.Component:
    name = rx.text.strong(D.pending_target)
    return rx.match(
        D.pending,
        (
            "disable",
            rx.text(
                "Disable ",
                name,
                "? Every open session of theirs is signed out at once, and they cannot log in until enabled.",
            ),
        ),
        ("enable", rx.text("Let ", name, " log in again? Their old sessions stay signed out.")),
        ("sign_out", rx.text("Sign out every open session of ", name, "? They can log in again.")),
        (
            "role",
            rx.text(
                "Change the role of ",
                name,
                ". It takes effect on their next click or request; the last active admin cannot be demoted.",
            ),
        ),
        ("throttle", rx.text("Clear the failed-login counters of ", name, ", so a login delay no longer blocks them.")),
        (
            "adjust",
            rx.text(
                "Credit or debit the cash of ",
                name,
                " with one system adjustment in their ledger. They see the reason in their history.",
            ),
        ),
        rx.text(""),
    )


def _holdings() -> rx.Component:
    return rx.cond(
        D.holdings.length() == 0,
        empty("No holdings."),
        table(
            header(
                "Asset",
                ("Quantity", "right"),
                ("Held", "right"),
                ("Avg cost", "right"),
                ("Price", "right"),
                ("Value", "right"),
                ("Unrealized", "right"),
            ),
            rx.table.body(
                rx.foreach(
                    D.holdings,
                    lambda h: rx.table.row(
                        rx.table.cell(rx.link(h["id"], href="/market/" + h["id"].to(str))),
                        rx.table.cell(h["quantity"], text_align="right", style=TABULAR),
                        rx.table.cell(h["held"], text_align="right", style=TABULAR),
                        rx.table.cell(h["avg_cost"], text_align="right", style=TABULAR),
                        rx.table.cell(h["price"], text_align="right", style=TABULAR),
                        rx.table.cell(h["value"], text_align="right", style=TABULAR),
                        rx.table.cell(signed(h["pnl"] + " (" + h["pnl_pct"] + ")", h["pnl_dir"])),
                        class_name="admin-holding-row",
                    ),
                )
            ),
        ),
    )


def _small_pager(page: Any, pages: Any, prev: Any, nxt: Any, total: Any, id_prefix: str) -> rx.Component:
    return rx.hstack(
        rx.text(total, " in all", size="1", color_scheme="gray"),
        rx.spacer(),
        rx.button("Newer", size="1", variant="soft", on_click=prev, disabled=page == 0, id=f"{id_prefix}-prev"),
        rx.text(page + 1, " / ", pages, size="1", style=TABULAR),
        rx.button("Older", size="1", variant="soft", on_click=nxt, disabled=page + 1 >= pages, id=f"{id_prefix}-next"),
        spacing="2",
        align="center",
        width="100%",
    )


def _ledger() -> rx.Component:
    return rx.vstack(
        rx.cond(
            D.ledger.length() == 0,
            empty("No ledger entries."),
            table(
                header("When", "Type", "Description", ("Amount", "right"), ("Balance", "right")),
                rx.table.body(
                    rx.foreach(
                        D.ledger,
                        lambda r: rx.table.row(
                            rx.table.cell(rx.tooltip(rx.text(r["when"]), content=r["exact"])),
                            rx.table.cell(rx.badge(r["type"], variant="soft")),
                            rx.table.cell(r["description"], white_space="normal", min_width="180px"),
                            rx.table.cell(
                                signed(r["amount"], r["direction"]),
                                text_align="right",
                            ),
                            rx.table.cell(r["balance_after"], text_align="right", style=TABULAR),
                            class_name="admin-ledger-row",
                        ),
                    )
                ),
            ),
        ),
        _small_pager(D.ledger_page, D.ledger_pages, D.ledger_prev, D.ledger_next, D.ledger_total, "ledger"),
        width="100%",
    )


def _sessions() -> rx.Component:
    return rx.cond(
        D.sessions.length() == 0,
        empty("No open sessions.", id="admin-no-sessions"),
        table(
            header("Signed in", "Client", "IP"),
            rx.table.body(
                rx.foreach(
                    D.sessions,
                    lambda s: rx.table.row(
                        rx.table.cell(rx.tooltip(rx.text(s["issued"]), content=s["exact"])),
                        rx.table.cell(s["agent"], white_space="normal"),
                        rx.table.cell(s["ip"]),
                        class_name="admin-session-row",
                    ),
                )
            ),
        ),
    )


def _clipped(text: Any, width: str, **props: Any) -> rx.Component:
    """Long text cut to `width` with an ellipsis; the whole of it in a tooltip."""
    return rx.tooltip(
        rx.text(text, max_width=width, overflow="hidden", text_overflow="ellipsis", white_space="nowrap", **props),
        content=text,
    )


def audit_table(rows: Any, with_user: bool = True) -> rx.Component:
    columns: list[Any] = ["When", "Event"]
    if with_user:
        columns.append("User")
    columns += ["Actor", "Target", "Reason", "IP", "Detail"]
    return table(
        header(*columns),
        rx.table.body(
            rx.foreach(
                rows,
                lambda a: rx.table.row(
                    rx.table.cell(rx.tooltip(rx.text(a["when"]), content=a["exact"])),
                    rx.table.cell(rx.code(a["event_type"], size="1")),
                    *(
                        [
                            rx.table.cell(
                                rx.cond(
                                    a["username"] != "",
                                    rx.link(a["username"], href="/admin/users/" + a["username"].to(str)),
                                    rx.text("—", color_scheme="gray"),
                                )
                            )
                        ]
                        if with_user
                        else []
                    ),
                    rx.table.cell(a["actor"]),
                    rx.table.cell(_clipped(a["target"], "120px")),
                    rx.table.cell(a["reason"], white_space="normal", min_width="140px"),
                    rx.table.cell(a["ip"]),
                    rx.table.cell(_clipped(a["detail"], "180px", size="1", color_scheme="gray")),
                    class_name="audit-row",
                ),
            )
        ),
    )


def _audit() -> rx.Component:
    return rx.vstack(
        rx.cond(D.audit.length() == 0, empty("No audit events for this user."), audit_table(D.audit, with_user=False)),
        _small_pager(D.audit_page, D.audit_pages, D.audit_prev, D.audit_next, D.audit_total, "user-audit"),
        width="100%",
    )


def _section(title: str, *children: rx.Component, extra: rx.Component | None = None) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(rx.heading(title, size="3"), rx.spacer(), extra or rx.fragment(), width="100%", align="center"),
            *children,
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def _detail() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.vstack(
                rx.heading(
                    rx.cond(P["name"] != "", P["name"], P["username"]),
                    " ",
                    rx.text.span("@", P["username"], color=rx.color("gray", 10), size="4"),
                    size="6",
                    id="admin-user-heading",
                ),
                rx.hstack(
                    rx.badge(
                        P["role"], color_scheme=rx.cond(P["role"] == "admin", "violet", "gray"), id="admin-user-role"
                    ),
                    rx.cond(
                        P["active"] == "yes",
                        rx.badge("active", color_scheme="green", id="admin-user-status"),
                        rx.badge("disabled", color_scheme="red", id="admin-user-status"),
                    ),
                    rx.cond(
                        P["blocked_until"] != "",
                        rx.badge("login delayed until ", P["blocked_until"], color_scheme="amber"),
                    ),
                    spacing="2",
                    wrap="wrap",
                ),
                spacing="2",
            ),
            rx.spacer(),
            _actions(),
            width="100%",
            align="start",
            wrap="wrap",
            spacing="3",
        ),
        rx.grid(
            figure("Cash", P["cash"], id="admin-user-cash"),
            figure("Held by open orders", P["held"], id="admin-user-held"),
            figure("Available", P["available"], id="admin-user-available"),
            figure("Holdings value", P["holdings_value"], id="admin-user-holdings"),
            figure("Total equity", P["equity"], id="admin-user-equity"),
            figure("Realized P&L", P["realized"], id="admin-user-realized"),
            columns=rx.breakpoints(initial="2", sm="3", lg="6"),
            spacing="3",
            width="100%",
        ),
        rx.grid(
            _section(
                "Profile",
                line("Email", P["email"]),
                line("Phone", P["phone"]),
                line("Date of birth", P["date_of_birth"]),
                line("Joined", rx.tooltip(rx.text(P["created"]), content=P["created_exact"])),
                line("Last changed", P["updated_exact"]),
            ),
            _section("Open sessions", _sessions()),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="3",
            width="100%",
        ),
        _section("Holdings", _holdings()),
        _section(
            "Open orders",
            orders_table(D.open_orders, empty="No open orders."),
            extra=rx.link(
                "All orders of this user", href="/admin/orders?user=" + D.target, size="2", id="admin-user-orders-link"
            ),
        ),
        _section("Ledger", _ledger()),
        _section(
            "Audit events",
            _audit(),
            extra=rx.link("Open in the audit log", href="/admin/audit?user=" + D.target, size="2"),
        ),
        reason_dialog(
            D,
            title=D.pending_title,
            description=_dialog_description(),
            confirm_label=D.pending_confirm,
            on_submit=D.confirm,
            fields=_dialog_fields(),
            colour=rx.cond(D.pending == "disable", "red", "indigo"),
        ),
        spacing="3",
        width="100%",
    )


def user() -> rx.Component:
    return admin_page(
        "users",
        rx.cond(
            ~D.found,
            rx.callout.root(
                rx.callout.icon(rx.icon("circle-alert")),
                rx.callout.text("No such user. ", rx.link("Back to the users", href="/admin/users")),
                color_scheme="red",
                id="admin-user-not-found",
            ),
            rx.cond(D.loading, rx.skeleton(height="400px", width="100%"), _detail()),
        ),
        title="User",
    )
