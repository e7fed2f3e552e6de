"""The dashboard page: totals, recent fills, top movers and allocation."""

from __future__ import annotations

import reflex as rx

from cnop_app.components.figures import signed
from cnop_app.components.layout import TABULAR, page
from cnop_app.components.orders import orders_table
from cnop_app.components.portfolio import allocation_chart, totals
from cnop_app.state.dashboard import DashboardState


def dashboard() -> rx.Component:
    return page(
        rx.cond(
            DashboardState.loading,
            rx.skeleton(height="400px", width="100%"),
            rx.vstack(
                totals(DashboardState),
                rx.grid(
                    rx.card(
                        rx.vstack(
                            rx.heading("Recent fills", size="4"),
                            orders_table(DashboardState.recent, empty="No fills yet — place your first order."),
                            width="100%",
                        ),
                        width="100%",
                    ),
                    rx.card(
                        rx.vstack(
                            rx.heading("Top movers (24h)", size="4"),
                            rx.foreach(
                                DashboardState.movers,
                                lambda m: rx.hstack(
                                    rx.link(m["name"], href="/market/" + m["id"].to(str)),
                                    rx.spacer(),
                                    rx.text(m["price"], style=TABULAR),
                                    signed(m["change24"], m["dir24"]),
                                    width="100%",
                                    class_name="mover-row",
                                ),
                            ),
                            width="100%",
                        ),
                        width="100%",
                    ),
                    columns=rx.breakpoints(initial="1", md="2"),
                    spacing="4",
                    width="100%",
                ),
                rx.card(
                    rx.vstack(rx.heading("Allocation", size="4"), allocation_chart(DashboardState), width="100%"),
                    width="100%",
                ),
                spacing="4",
                width="100%",
            ),
        ),
        title="Dashboard",
    )
