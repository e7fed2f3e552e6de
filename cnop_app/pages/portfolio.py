"""The portfolio page: totals, holdings, allocation and value over time."""

from __future__ import annotations

import reflex as rx

from cnop_app.components.charts import area_chart, range_switcher
from cnop_app.components.figures import signed
from cnop_app.components.layout import TABULAR, page
from cnop_app.components.portfolio import allocation_chart, totals
from cnop_app.state.portfolio import PortfolioState


def holdings_table() -> rx.Component:
    return rx.cond(
        PortfolioState.holdings.length() == 0,
        rx.callout.root(
            rx.callout.text("No holdings yet — ", rx.link("buy your first asset", href="/trade"), "."),
            id="holdings-empty",
        ),
        rx.box(
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(h, text_align="left" if h == "Asset" else "right")
                            for h in (
                                "Asset",
                                "Quantity",
                                "Avg cost",
                                "Price",
                                "Value",
                                "Unrealized P&L",
                                "Realized",
                                "Allocation",
                            )
                        ]
                    )
                ),
                rx.table.body(
                    rx.foreach(
                        PortfolioState.holdings,
                        lambda h: rx.table.row(
                            rx.table.cell(
                                rx.link(
                                    h["name"],
                                    " ",
                                    rx.text.span(h["id"], color=rx.color("gray", 10)),
                                    href="/market/" + h["id"].to(str),
                                )
                            ),
                            rx.table.cell(h["quantity"], text_align="right", style=TABULAR),
                            rx.table.cell(h["avg_cost"], text_align="right", style=TABULAR),
                            rx.table.cell(h["price"], text_align="right", style=TABULAR),
                            rx.table.cell(h["value"], text_align="right", style=TABULAR, id="value-" + h["id"].to(str)),
                            rx.table.cell(signed(h["pnl"] + " (" + h["pnl_pct"] + ")", h["pnl_dir"])),
                            rx.table.cell(h["realized"], text_align="right", style=TABULAR),
                            rx.table.cell(h["allocation"], text_align="right", style=TABULAR),
                            class_name="holding-row",
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


def _value_chart() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading("Value over time", size="4"),
            rx.spacer(),
            range_switcher(PortfolioState.history_range, PortfolioState.set_history_range, size="1"),
            width="100%",
        ),
        area_chart(PortfolioState.history, "value", 240, "The chart fills in as prices refresh.", whole_ticks=True),
        width="100%",
    )


def portfolio() -> rx.Component:
    return page(
        rx.cond(
            PortfolioState.loading,
            rx.skeleton(height="400px", width="100%"),
            rx.vstack(
                totals(PortfolioState),
                rx.card(holdings_table(), width="100%"),
                rx.grid(
                    rx.card(
                        rx.vstack(rx.heading("Allocation", size="4"), allocation_chart(PortfolioState), width="100%"),
                        width="100%",
                    ),
                    rx.card(_value_chart(), width="100%"),
                    columns=rx.breakpoints(initial="1", md="2"),
                    spacing="4",
                    width="100%",
                ),
                spacing="4",
                width="100%",
            ),
        ),
        title="Portfolio",
    )
