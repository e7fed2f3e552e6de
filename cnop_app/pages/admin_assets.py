"""/admin/assets: trading on/off per asset, price staleness, refresh prices now."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cnop_app.components.admin import admin_page, empty, header, reason_dialog, table
from cnop_app.components.layout import TABULAR
from cnop_app.state.admin_assets import REFRESH_ACTION, AdminAssetsState

A = AdminAssetsState

INACTIVE_RULE = (
    "Trading off: new orders for the asset are refused with a clear message. Its open limit orders stay "
    "pending and do not fill while trading is off; they still expire at their expiry time and can be "
    "cancelled by their owner or on the Orders tab. Once trading is back on they fill at the first price "
    "refresh that crosses their limit. Holdings keep their value at the stored price."
)


def _row(a: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(a["rank"], style=TABULAR, color=rx.color("gray", 11)),
        rx.table.cell(
            rx.hstack(
                rx.avatar(src=a["image"], fallback=a["id"].to(str)[:1], size="1", radius="full"),
                rx.link(a["name"], href="/market/" + a["id"].to(str), weight="medium"),
                rx.text(a["id"], size="1", color_scheme="gray"),
                align="center",
                spacing="2",
            )
        ),
        rx.table.cell(a["price"], text_align="right", style=TABULAR),
        rx.table.cell(
            rx.hstack(
                rx.tooltip(rx.text(a["updated"]), content=a["updated_exact"]),
                rx.cond(a["stale"] == "yes", rx.badge("stale", color_scheme="amber", size="1")),
                spacing="2",
                align="center",
            )
        ),
        rx.table.cell(a["source"]),
        rx.table.cell(a["open_orders"], text_align="right", style=TABULAR),
        rx.table.cell(
            rx.cond(
                a["active"] == "yes",
                rx.badge("on", color_scheme="green", id="trading-" + a["id"].to(str)),
                rx.badge("off", color_scheme="red", id="trading-" + a["id"].to(str)),
            )
        ),
        rx.table.cell(
            rx.button(
                rx.cond(a["active"] == "yes", "Turn off", "Turn on"),
                size="1",
                variant="soft",
                color_scheme=rx.cond(a["active"] == "yes", "red", "green"),
                on_click=A.ask_toggle(a["id"]),
                id="toggle-" + a["id"].to(str),
                aria_label="Turn trading on or off for " + a["id"].to(str),
            )
        ),
        class_name="admin-asset-row",
    )


def _description() -> rx.Component:
    return rx.cond(
        A.pending == REFRESH_ACTION,
        rx.text(
            "Fetch prices from the configured feed now. It honours the refresher lease (another refresh running "
            "answers 'busy') and the circuit breaker."
        ),
        rx.vstack(
            rx.text(
                rx.cond(A.pending_enable, "Turn trading ON for ", "Turn trading OFF for "),
                rx.text.strong(A.pending_name, " (", A.pending_target, ")"),
                "? ",
                A.pending_open_orders,
                " open order(s) of users.",
            ),
            rx.cond(~A.pending_enable, rx.text(INACTIVE_RULE, size="1", color_scheme="gray")),
            spacing="2",
        ),
    )


def assets() -> rx.Component:
    return admin_page(
        "assets",
        rx.callout(INACTIVE_RULE, icon="info", size="1", margin_bottom="1em", id="inactive-rule"),
        rx.hstack(
            rx.input(
                rx.input.slot(rx.icon("search", size=16)),
                placeholder="Search name or symbol",
                on_change=A.set_search.debounce(250),
                aria_label="Search assets",
                id="admin-asset-search",
                width=rx.breakpoints(initial="100%", sm="260px"),
            ),
            rx.el.label(
                rx.hstack(
                    rx.checkbox(checked=A.inactive_only, on_change=A.set_inactive_only, id="only-off"),
                    rx.text("Only trading off", size="2"),
                    spacing="2",
                    align="center",
                )
            ),
            rx.spacer(),
            rx.button(
                rx.icon("refresh-cw", size=14),
                "Refresh prices now",
                on_click=A.ask_refresh,
                id="refresh-now",
            ),
            width="100%",
            align="center",
            wrap="wrap",
            spacing="3",
            margin_bottom="1em",
        ),
        rx.cond(A.error != "", rx.callout(A.error, icon="triangle-alert", color_scheme="red", margin_bottom="1em")),
        rx.cond(
            A.loading,
            rx.skeleton(height="400px", width="100%"),
            rx.cond(
                A.rows.length() == 0,
                empty("No assets match."),
                table(
                    header(
                        "#", "Asset", ("Price", "right"), "Updated", "Source", ("Open orders", "right"), "Trading", ""
                    ),
                    rx.table.body(rx.foreach(A.rows, _row)),
                ),
            ),
        ),
        reason_dialog(
            A,
            title=rx.cond(A.pending == REFRESH_ACTION, "Refresh prices now", "Trading on or off"),
            description=_description(),
            confirm_label=rx.cond(
                A.pending == REFRESH_ACTION, "Refresh now", rx.cond(A.pending_enable, "Turn on", "Turn off")
            ),
            on_submit=A.confirm,
            colour=rx.cond((A.pending != REFRESH_ACTION) & ~A.pending_enable, "red", "indigo"),
        ),
        title="Assets",
    )
