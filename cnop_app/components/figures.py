"""Number figures shared by every page: a change shown with its direction."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cnop_app.components.layout import TABULAR

UP, DOWN, FLAT = rx.color("grass", 11), rx.color("tomato", 11), rx.color("gray", 11)


def direction_colour(direction: Any) -> rx.Var:
    """The colour of an "up" / "down" / "flat" direction (see `formatting.direction`)."""
    return rx.match(direction, ("up", UP), ("down", DOWN), FLAT)


def signed(text: Any, direction: Any, **props: Any) -> rx.Component:
    """A change figure: colour AND arrow, never colour alone."""
    return rx.hstack(
        rx.match(
            direction,
            ("up", rx.icon("arrow-up-right", size=14)),
            ("down", rx.icon("arrow-down-right", size=14)),
            rx.icon("minus", size=14),
        ),
        rx.text(text, style=TABULAR),
        spacing="1",
        align="center",
        justify="end",
        color=direction_colour(direction),
        **props,
    )
