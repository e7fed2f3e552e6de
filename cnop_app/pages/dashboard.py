"""The dashboard page: totals, recent fills, the watchlist (live), top movers and allocation."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cnop_app.components.figures import signed
from cnop_app.components.layout import TABULAR, page
from cnop_app.components.orders import orders_table
from cnop_app.components.portfolio import allocation_chart, totals
from cnop_app.state.dashboard import DashboardState


def _watch_row(m: Any) -> rx.Component:
    return rx.hstack(
        rx.avatar(src=m["image"], fallback=m["id"].to(str)[:1], size="1", radius="full"),
        rx.link(m["name"], href="/market/" + m["id"].to(str), weight="medium"),
        rx.text(m["id"], size="1", color_scheme="gray"),
        rx.spacer(),
        rx.text(
            m["price"],
            class_name=rx.cond(m["flash"] == "changed", "price-flash", ""),
            style=TABULAR,
            key=m["key"],
            id="watch-price-" + m["id"].to(str),
        ),
        rx.box(signed(m["change24"], m["dir24"]), min_width="84px"),
        width="100%",
        align="center",
        class_name="watch-row",
    )


def _watchlist() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Watchlist", size="4"),
                rx.spacer(),
                rx.link("Market", href="/market", size="2"),
                width="100%",
                align="center",
            ),
            rx.cond(
                DashboardState.watched.length() == 0,
                rx.text(
                    "No starred assets yet — tap the ",
                    rx.icon("star", size=12, display="inline"),
                    " next to an asset on the ",
                    rx.link("Market", href="/market"),
                    " page to follow it here.",
                    color_scheme="gray",
                    size="2",
                    id="watchlist-empty",
                ),
                rx.vstack(rx.foreach(DashboardState.watched, _watch_row), spacing="2", width="100%"),
            ),
            width="100%",
        ),
        width="100%",
    )


def _movers() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Top movers (24h)", size="4"),
            rx.foreach(
                DashboardState.movers,
                lambda m: rx.hstack(
                    rx.link(m["name"], href="/market/" + m["id"].to(str)),
                    rx.spacer(),
                    rx.text(m["price"], style=TABULAR),
                    rx.box(signed(m["change24"], m["dir24"]), min_width="84px"),
                    width="100%",
                    class_name="mover-row",
                ),
            ),
            width="100%",
        ),
        width="100%",
    )


def dashboard() -> rx.Component:
    return page(
        rx.cond(
            DashboardState.loading,
            rx.skeleton(height="400px", width="100%"),
            rx.vstack(
                totals(DashboardState),
                # Every column of the fills table fits at laptop widths: the table gets the full row.
                rx.card(
                    rx.vstack(
                        rx.heading("Recent fills", size="4"),
                        orders_table(DashboardState.recent, empty="No fills yet — place your first order."),
                        width="100%",
                    ),
                    width="100%",
                ),
                rx.grid(
                    _watchlist(),
                    _movers(),
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
