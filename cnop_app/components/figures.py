"""Figures and controls shared by pages: a change shown with its direction, line icons, the watchlist star."""

from __future__ import annotations

from typing import Any

import reflex as rx

# Lucide's line icons (ISC licence) as plain <svg> paths: a market table renders a few hundred of them at
# once, and a bare <svg> costs the browser a fraction of an icon component. The look (24-unit box, 2-unit
# round stroke in the text colour) comes from the `line-icon` class in assets/cnop.css.
ARROW_UP_RIGHT = "M7 7h10v10M7 17 17 7"
ARROW_DOWN_RIGHT = "m7 7 10 10M17 7v10H7"
MINUS = "M5 12h14"
STAR = (
    "M11.525 2.295a.53.53 0 0 1 .95 0l2.31 4.679a2.123 2.123 0 0 0 1.595 1.16l5.166.756a.53.53 0 0 1 .294.904"
    "l-3.736 3.638a2.123 2.123 0 0 0-.611 1.878l.882 5.14a.53.53 0 0 1-.771.56l-4.618-2.428a2.122 2.122 0 0 0"
    "-1.973 0L6.396 21.01a.53.53 0 0 1-.77-.56l.881-5.139a2.122 2.122 0 0 0-.611-1.879L2.16 9.795a.53.53 0 0 1"
    " .294-.906l5.165-.755a2.122 2.122 0 0 0 1.597-1.16z"
)


def line_icon(path: Any, size: int) -> rx.Component:
    """A Lucide-style line icon drawn from its path data (decorative: hidden from screen readers)."""
    return rx.el.svg(
        rx.el.svg.path(d=path),
        width=str(size),
        height=str(size),
        view_box="0 0 24 24",
        class_name="line-icon",
        aria_hidden="true",
    )


def signed(text: Any, direction: Any, **props: Any) -> rx.Component:
    """A change figure: colour AND arrow, never colour alone (classes `signed` and `dir-*` in cnop.css)."""
    direction = rx.Var.create(direction).to(str)
    return rx.el.span(
        line_icon(rx.match(direction, ("up", ARROW_UP_RIGHT), ("down", ARROW_DOWN_RIGHT), MINUS), 14),
        rx.el.span(text),
        class_name="signed dir-" + direction,
        **props,
    )


def star_button(starred: Any, on_click: Any, asset_id: Any) -> rx.Component:
    """The watchlist star (12 px, as Radix sizes an icon in a size-1 button): filled when starred, by its
    aria-pressed (assets/cnop.css).

    A plain <button> with the classes of Radix's ghost icon button, size 1 (and Reflex's 6 px padding,
    class `watch-star`): a market table renders one per row, and the component worked out its props on
    every render."""
    return rx.el.button(
        line_icon(STAR, 12),
        on_click=on_click,
        aria_label=rx.cond(starred, "Remove from watchlist", "Add to watchlist"),
        aria_pressed=rx.cond(starred, "true", "false"),
        class_name="rt-reset rt-BaseButton rt-r-size-1 rt-variant-ghost rt-IconButton watch-star",
        custom_attrs={"data-accent-color": rx.cond(starred, "amber", "gray")},
        id="star-" + asset_id,
    )
