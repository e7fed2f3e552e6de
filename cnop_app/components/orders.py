"""The orders table shared by the trade page, the order history and the dashboard."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cnop_app.components.layout import TABULAR


def orders_table(rows: Any, cancel: Any = None, empty: str = "No orders yet.") -> rx.Component:
    headers = ["When", "Order", "Asset", "Quantity", "Price", "Total", "Status"] + ([""] if cancel else [])
    return rx.cond(
        rows.length() == 0,
        rx.text(empty, color_scheme="gray", id="orders-empty"),
        rx.box(
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(
                                h, text_align="right" if h in ("Quantity", "Price", "Total") else "left"
                            )
                            for h in headers
                        ]
                    )
                ),
                rx.table.body(
                    rx.foreach(
                        rows,
                        lambda o: rx.table.row(
                            rx.table.cell(rx.tooltip(rx.text(o["when"]), content=o["exact"])),
                            rx.table.cell(
                                rx.text(
                                    o["type"],
                                    color=rx.cond(o["side"] == "buy", rx.color("grass", 11), rx.color("tomato", 11)),
                                )
                            ),
                            rx.table.cell(rx.link(o["asset"], href="/market/" + o["asset"].to(str))),
                            rx.table.cell(o["quantity"], text_align="right", style=TABULAR),
                            rx.table.cell(o["price"], text_align="right", style=TABULAR),
                            rx.table.cell(o["total"], text_align="right", style=TABULAR),
                            rx.table.cell(
                                rx.badge(o["status"], color_scheme=o["status_colour"]), class_name="order-status"
                            ),
                            *(
                                [
                                    rx.table.cell(
                                        rx.button(
                                            "Cancel",
                                            size="1",
                                            variant="soft",
                                            color_scheme="red",
                                            on_click=cancel(o["id"]),
                                            aria_label="Cancel order",
                                        )
                                    )
                                ]
                                if cancel
                                else []
                            ),
                            class_name="order-row",
                        ),
                    )
                ),
                width="100%",
                variant="surface",
                size="1",
            ),
            overflow_x="auto",
            width="100%",
        ),
    )
