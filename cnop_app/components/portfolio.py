"""Portfolio pieces shared by the portfolio page and the dashboard: the totals and the allocation chart."""

from __future__ import annotations

import reflex as rx

from cnop_app.components.figures import signed
from cnop_app.components.layout import stat
from cnop_app.state.trading_common import PortfolioMixin

PIE_COLOURS = ["#3e63dd", "#30a46c", "#f76b15", "#8e4ec6", "#e5484d", "#12a594", "#ffc53d", "#6e56cf", "#8d8d8d"]


def allocation_chart(state: type[PortfolioMixin]) -> rx.Component:
    return rx.recharts.pie_chart(
        rx.recharts.pie(
            rx.foreach(
                state.allocation,
                lambda _item, i: rx.recharts.cell(fill=rx.Var.create(PIE_COLOURS)[i % len(PIE_COLOURS)]),
            ),
            data=state.allocation,
            data_key="value",
            name_key="name",
            inner_radius="55%",
            outer_radius="85%",
            is_animation_active=False,
        ),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(),
        width="100%",
        height=260,
    )


def totals(state: type[PortfolioMixin]) -> rx.Component:
    t = state.totals
    return rx.grid(
        stat("Total equity", t["equity"], id="total-equity"),
        stat("Cash", t["cash"], id="total-cash", hint=rx.text("available ", t["available"])),
        stat("Holdings value", t["holdings_value"], id="holdings-value"),
        rx.card(
            rx.vstack(
                rx.text("Unrealized P&L", size="2", color_scheme="gray"),
                signed(t["unrealized"] + " (" + t["unrealized_pct"] + ")", t["unrealized_dir"], id="total-pnl"),
                rx.text("Realized ", t["realized"], size="1", color_scheme="gray"),
                spacing="1",
            ),
            width="100%",
        ),
        columns=rx.breakpoints(initial="1", sm="2", md="4"),
        spacing="4",
        width="100%",
    )
