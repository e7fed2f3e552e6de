"""/admin/orders: every user's orders, filtered, and cancelling one on the user's behalf."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cnop_app.components.admin import (
    admin_page,
    empty,
    filter_form,
    header,
    num_pager,
    reason_dialog,
    select_filter,
    table,
    text_filter,
)
from cnop_app.components.layout import TABULAR
from cnop_app.domain.enums import OrderStatus, OrderType
from cnop_app.state.admin_orders import ANY, AdminOrdersState

R = AdminOrdersState


def _order_row(o: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.tooltip(rx.text(o["when"]), content=o["exact"])),
        rx.table.cell(rx.link(o["user"], href="/admin/users/" + o["user"].to(str))),
        rx.table.cell(
            rx.text(o["type"], color=rx.cond(o["side"] == "buy", rx.color("grass", 11), rx.color("tomato", 11)))
        ),
        rx.table.cell(o["asset"]),
        rx.table.cell(o["quantity"], text_align="right", style=TABULAR),
        rx.table.cell(o["price"], text_align="right", style=TABULAR),
        rx.table.cell(o["total"], text_align="right", style=TABULAR),
        rx.table.cell(rx.badge(o["status"], color_scheme=o["status_colour"])),
        rx.table.cell(
            rx.cond(
                o["pending"] == "yes",
                rx.button(
                    "Cancel",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=R.ask_cancel(o["id"]),
                    aria_label="Cancel this order on the user's behalf",
                ),
            )
        ),
        class_name="admin-order-row",
    )


def orders() -> rx.Component:
    return admin_page(
        "orders",
        filter_form(
            R,
            text_filter("User", "user", R.f_user, "username"),
            text_filter("Asset", "asset", R.f_asset, "e.g. BTC", width="100px"),
            select_filter("Type", "type", [(ANY, "All"), *[(t.value, t.label) for t in OrderType]], R.f_type),
            select_filter("Status", "status", [(ANY, "All"), *[(s.value, s.label) for s in OrderStatus]], R.f_status),
            text_filter("From", "since", R.f_since, type="date", width="160px"),
            text_filter("To", "until", R.f_until, type="date", width="160px"),
            key=R.f_user + R.f_asset + R.f_type + R.f_status + R.f_since + R.f_until,
        ),
        rx.cond(R.error != "", rx.callout(R.error, icon="triangle-alert", color_scheme="red", margin_bottom="1em")),
        rx.cond(
            R.loading,
            rx.skeleton(height="300px", width="100%"),
            rx.cond(
                R.rows.length() == 0,
                empty("No orders match these filters.", id="admin-orders-empty"),
                table(
                    header(
                        "When",
                        "User",
                        "Order",
                        "Asset",
                        ("Quantity", "right"),
                        ("Price", "right"),
                        ("Total", "right"),
                        "Status",
                        "",
                    ),
                    rx.table.body(rx.foreach(R.rows, _order_row)),
                ),
            ),
        ),
        num_pager(R, id_prefix="admin-orders"),
        reason_dialog(
            R,
            title="Cancel this order",
            description=rx.text(
                "Cancel ", rx.text.strong(R.pending_summary), " on the user's behalf? Its hold is released."
            ),
            confirm_label="Cancel the order",
            on_submit=R.confirm,
            colour="red",
        ),
        title="Orders",
    )
