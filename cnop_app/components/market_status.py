"""The market-status dot of the top bar: "live", "stale since ...", "offline prices"."""

from __future__ import annotations

import reflex as rx

from cnop_app.state.market import MarketState


def status_badge() -> rx.Component:
    return rx.tooltip(
        rx.badge(
            rx.box(width="8px", height="8px", border_radius="50%", background=rx.color(MarketState.status_colour, 9)),
            MarketState.status_label,
            color_scheme=MarketState.status_colour,
            variant="soft",
            id="market-status",
            on_mount=MarketState.load_status,
        ),
        content="Prices as of " + MarketState.as_of_exact,
    )
