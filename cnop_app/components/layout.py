"""One top bar and page frame for every page, and the form and stat pieces they share."""

from __future__ import annotations

import reflex as rx

from cnop_app.components.market_status import status_badge
from cnop_app.state.auth import AuthState
from cnop_app.state.pager import PagerMixin

MAIN_LINKS = (
    ("Market", "/market", False),
    ("Dashboard", "/dashboard", True),
    ("Trade", "/trade", True),
    ("Portfolio", "/portfolio", True),
    ("Orders", "/orders", True),
    ("Account", "/account", True),
)

TABULAR = {"font_variant_numeric": "tabular-nums"}
LABEL_STYLE = {"font_weight": "500", "font_size": "14px"}
SELECT_STYLE = {
    "width": "100%",
    "padding": "8px",
    "border_radius": "6px",
    "border": f"1px solid {rx.color('gray', 7)}",
    "background": rx.color("gray", 1),
}


def nav_link(label: str, href: str) -> rx.Component:
    return rx.link(label, href=href, size="2", weight="medium", color_scheme="gray", high_contrast=True)


def user_menu() -> rx.Component:
    return rx.cond(
        AuthState.is_authenticated,
        rx.menu.root(
            rx.menu.trigger(
                rx.button(
                    rx.icon("circle-user", size=16),
                    rx.text(AuthState.username, id="nav-username"),
                    variant="soft",
                    size="2",
                    aria_label="Account menu",
                )
            ),
            rx.menu.content(
                rx.menu.item("Profile", on_click=rx.redirect("/profile")),
                rx.menu.item("Account", on_click=rx.redirect("/account")),
                rx.cond(AuthState.is_admin, rx.menu.item("Admin", on_click=rx.redirect("/admin"))),
                rx.menu.separator(),
                rx.menu.item("Log out", color="red", on_click=AuthState.logout, id="logout"),
            ),
        ),
        rx.hstack(
            rx.link(rx.button("Log in", variant="soft", size="2"), href="/login"),
            rx.link(rx.button("Sign up", size="2"), href="/register"),
            spacing="2",
        ),
    )


def top_bar() -> rx.Component:
    links = [nav_link(label, href) for label, href, needs_login in MAIN_LINKS if not needs_login]
    private = [nav_link(label, href) for label, href, needs_login in MAIN_LINKS if needs_login]
    status = status_badge()
    return rx.box(
        rx.hstack(
            rx.link(
                rx.hstack(
                    rx.icon("chart-candlestick", size=22, color=rx.color("accent", 9)),
                    rx.heading("CNOP", size="5", weight="bold"),
                    align="center",
                    spacing="2",
                ),
                href="/",
                underline="none",
                color_scheme="gray",
                high_contrast=True,
            ),
            rx.hstack(
                *links,
                rx.cond(AuthState.is_authenticated, rx.hstack(*private, spacing="4", wrap="wrap")),
                rx.cond(AuthState.is_admin, nav_link("Admin", "/admin")),
                spacing="4",
                align="center",
                wrap="wrap",
            ),
            rx.spacer(),
            status,
            rx.color_mode.button(size="2", variant="ghost", aria_label="Switch light or dark theme"),
            user_menu(),
            align="center",
            spacing="4",
            width="100%",
            wrap="wrap",
        ),
        padding_x="1.5em",
        padding_y="0.75em",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 1),
        # Sticky on wide screens only: on a phone the wrapped bar would hide a quarter of the page.
        position=rx.breakpoints(initial="static", md="sticky"),
        top="0",
        z_index="10",
        width="100%",
    )


def toaster() -> rx.Component:
    """The app's toast provider. Its direction is given: without one, sonner's Toaster reads the page's
    computed `direction` on every render, which makes the browser compute the style of the whole page
    there and then (in the middle of React's commit of /market's rows, for one)."""
    return rx.toast.provider(position="bottom-right", close_button=True, dir="ltr")


def page(*children: rx.Component, title: str = "", max_width: str = "1200px") -> rx.Component:
    return rx.box(
        top_bar(),
        rx.box(
            rx.cond(title != "", rx.heading(title, size="7", margin_bottom="0.75em")) if title else rx.fragment(),
            *children,
            max_width=max_width,
            margin_x="auto",
            # Narrower margins on a phone: 375 px leaves little room for a table.
            padding_x=rx.breakpoints(initial="0.5em", sm="1.5em"),
            padding_y="1.5em",
            width="100%",
        ),
        min_height="100vh",
        width="100%",
    )


def label_for(text: str, input_id: str) -> rx.Component:
    """A form label tied to its input (`for` = the input id, for screen readers)."""
    return rx.el.label(text, html_for=input_id, style=LABEL_STYLE)


def field(
    label: str,
    name: str,
    errors: rx.Var,
    *,
    type: str = "text",
    placeholder: str = "",
    default_value: rx.Var | str | None = None,
    hint: str | rx.Var = "",
    required: bool = False,
    auto_complete: str | None = None,
) -> rx.Component:
    """A labelled input with its inline error (label `for` the input id, for screen readers)."""
    input_id = f"field-{name}"
    extra = {"default_value": default_value} if default_value is not None else {}
    if auto_complete:
        extra["auto_complete"] = auto_complete
    return rx.vstack(
        label_for(label, input_id),
        rx.input(
            id=input_id,
            name=name,
            type=type,
            placeholder=placeholder,
            required=required,
            width="100%",
            size="3",
            **extra,
        ),
        rx.cond(hint != "", rx.text(hint, size="1", color_scheme="gray")) if hint else rx.fragment(),
        rx.cond(
            errors[name],
            rx.text(errors[name], size="2", color_scheme="red", id=f"error-{name}", role="alert"),
        ),
        spacing="1",
        width="100%",
        align="stretch",
    )


def form_error(message: rx.Var) -> rx.Component:
    """A form's error callout, rendered only when there is a message: a missing key of an error map is
    `undefined` in the browser (never equal to ""), and must not show an empty red box."""
    return rx.cond(
        message,
        rx.callout(message, icon="triangle-alert", color_scheme="red", role="alert", width="100%"),
    )


def stat(label: str, value: rx.Var | str, *, id: str = "", hint: rx.Var | str = "") -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(label, size="2", color_scheme="gray"),
            rx.heading(value, size="6", id=id, style=TABULAR),
            rx.text(hint, size="1", color_scheme="gray") if hint != "" else rx.fragment(),
            spacing="1",
        ),
        width="100%",
    )


def pager(state: type[PagerMixin], *middle: rx.Component, id_prefix: str = "page") -> rx.Component:
    """Newer/Older buttons for a newest-first list paged by `PagerMixin`."""
    return rx.hstack(
        rx.button("Newer", on_click=state.prev_page, disabled=~state.has_prev, variant="soft", id=f"{id_prefix}-prev"),
        *middle,
        rx.button("Older", on_click=state.next_page, disabled=~state.has_more, variant="soft", id=f"{id_prefix}-next"),
        spacing="3",
        align="center",
        justify="end",
        width="100%",
    )
