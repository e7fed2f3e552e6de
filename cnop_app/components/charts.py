"""Chart pieces shared by the asset page and the portfolio: one look for every time series."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cnop_app.domain.ranges import RANGE_NAMES


def range_switcher(value: Any, on_change: Any, size: str = "2") -> rx.Component:
    return rx.segmented_control.root(
        *[rx.segmented_control.item(name, value=name) for name in RANGE_NAMES],
        value=value,
        on_change=on_change,
        size=size,
        aria_label="Chart range",
    )


def area_chart(data: Any, key: str, height: int, empty: str, *, whole_ticks: bool = False) -> rx.Component:
    """An area chart of `key` over `t` (x axis labels), with grid and tooltip; `empty` in its place
    until there are two points to draw a line between. `whole_ticks`: the value axis is labelled in
    whole units (dollar amounts): with decimal ticks, a portfolio that moved by a cent was labelled
    4999.9975, 4999.995…, wider than the axis, and a one-cent change filled the chart's height."""
    return rx.cond(
        data.length() < 2,
        rx.center(rx.text(empty, color_scheme="gray"), height=f"{height}px"),
        _area_chart(data, key, height, whole_ticks),
    )


def _area_chart(data: Any, key: str, height: int, whole_ticks: bool) -> rx.Component:
    return rx.recharts.area_chart(
        rx.recharts.area(
            data_key=key,
            stroke=rx.color("accent", 9),
            fill=rx.color("accent", 4),
            type_="monotone",
            is_animation_active=False,
        ),
        rx.recharts.x_axis(data_key="t", min_tick_gap=40, tick_line=False),
        rx.recharts.y_axis(domain=["auto", "auto"], width=80, tick_line=False, allow_decimals=not whole_ticks),
        rx.recharts.cartesian_grid(stroke_dasharray="3 3", opacity=0.3),
        rx.recharts.graphing_tooltip(),
        data=data,
        width="100%",
        height=height,
    )
