"""Landing, login and registration pages."""

from __future__ import annotations

import reflex as rx

from cnop_app.components.figures import signed
from cnop_app.components.layout import TABULAR, field, form_error, page
from cnop_app.state.auth import AuthState
from cnop_app.state.market import LandingState


def landing() -> rx.Component:
    return page(
        rx.vstack(
            rx.heading("Paper-trade crypto on your own server", size="8", text_align="center"),
            rx.text(
                "CNOP is a self-hosted trading platform: fund a paper cash balance, watch live prices, "
                "place market and limit orders, and follow your portfolio as the market moves.",
                size="4",
                color_scheme="gray",
                text_align="center",
                max_width="640px",
            ),
            rx.cond(
                AuthState.is_authenticated,
                rx.hstack(
                    rx.link(rx.button("Go to dashboard", size="3"), href="/dashboard"),
                    rx.link(rx.button("Browse the market", size="3", variant="soft"), href="/market"),
                    spacing="3",
                ),
                rx.hstack(
                    rx.link(rx.button("Create an account", size="3", id="cta-register"), href="/register"),
                    rx.link(rx.button("Log in", size="3", variant="soft"), href="/login"),
                    rx.link(rx.button("Browse the market", size="3", variant="ghost"), href="/market"),
                    spacing="3",
                    wrap="wrap",
                    justify="center",
                ),
            ),
            rx.cond(
                LandingState.movers.length() > 0,
                rx.card(
                    rx.vstack(
                        rx.hstack(
                            rx.heading("Top movers (24h)", size="4"),
                            rx.spacer(),
                            rx.link("All prices", href="/market", size="2"),
                            width="100%",
                        ),
                        rx.grid(
                            rx.foreach(
                                LandingState.movers,
                                lambda m: rx.link(
                                    rx.hstack(
                                        rx.avatar(
                                            src=m["image"], fallback=m["id"].to(str)[:1], size="1", radius="full"
                                        ),
                                        rx.text(m["id"], weight="bold"),
                                        rx.spacer(),
                                        rx.text(m["price"], style=TABULAR),
                                        signed(m["change24"], m["dir24"]),
                                        align="center",
                                        width="100%",
                                        class_name="landing-mover",
                                    ),
                                    href="/market/" + m["id"].to(str),
                                    underline="none",
                                    color_scheme="gray",
                                    high_contrast=True,
                                ),
                            ),
                            columns=rx.breakpoints(initial="1", sm="2", md="3"),
                            spacing="4",
                            width="100%",
                        ),
                        width="100%",
                    ),
                    width="100%",
                ),
            ),
            rx.grid(
                _feature("wallet", "Exact money", "Every cent is a ledger entry; balances always add up."),
                _feature("activity", "Live prices", "Prices refresh on a schedule and reach your browser at once."),
                _feature("shield-check", "Yours to run", "One app, SQLite or PostgreSQL, works offline."),
                columns=rx.breakpoints(initial="1", sm="3"),
                spacing="4",
                width="100%",
                padding_top="2em",
            ),
            spacing="5",
            align="center",
            padding_y="3em",
        ),
    )


def _feature(icon: str, title: str, text: str) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.icon(icon, size=24, color=rx.color("accent", 9)),
            rx.heading(title, size="4"),
            rx.text(text, size="2", color_scheme="gray"),
            spacing="2",
        )
    )


def _auth_card(title: str, on_submit: rx.EventHandler, max_width: str, *fields: rx.Component) -> rx.Component:
    """The centred card of the login and registration forms, with the form-level error on top."""
    return page(
        rx.center(
            rx.card(
                rx.form(
                    rx.vstack(
                        rx.heading(title, size="6"),
                        form_error(AuthState.auth_error),
                        *fields,
                        spacing="4",
                        width="100%",
                    ),
                    on_submit=on_submit,
                    reset_on_submit=False,
                    width="100%",
                ),
                width="100%",
                max_width=max_width,
                size="4",
            ),
            padding_top="2em",
        )
    )


def login() -> rx.Component:
    return _auth_card(
        "Log in",
        AuthState.login,
        "420px",
        field("Username", "username", AuthState.form_errors, required=True, auto_complete="username"),
        field(
            "Password",
            "password",
            AuthState.form_errors,
            type="password",
            required=True,
            auto_complete="current-password",
        ),
        rx.button("Log in", type="submit", size="3", width="100%", id="login-submit"),
        rx.text(
            "New here? ",
            rx.link("Create an account", href="/register"),
            size="2",
        ),
    )


def register() -> rx.Component:
    return _auth_card(
        "Create your account",
        AuthState.register,
        "520px",
        rx.grid(
            field("First name", "first_name", AuthState.form_errors, required=True),
            field("Last name", "last_name", AuthState.form_errors, required=True),
            columns="2",
            spacing="3",
            width="100%",
        ),
        field(
            "Username",
            "username",
            AuthState.form_errors,
            required=True,
            hint="6-30 letters, digits or _",
            auto_complete="username",
        ),
        field("Email", "email", AuthState.form_errors, type="email", required=True),
        field(
            "Password",
            "password",
            AuthState.form_errors,
            type="password",
            required=True,
            hint="At least 12 characters with upper and lower case, a digit and one of !@#$%^&*()-_=+",
            auto_complete="new-password",
        ),
        field(
            "Confirm password",
            "confirm_password",
            AuthState.form_errors,
            type="password",
            required=True,
            auto_complete="new-password",
        ),
        rx.grid(
            field("Phone (optional)", "phone", AuthState.form_errors, type="tel"),
            field("Date of birth (optional)", "date_of_birth", AuthState.form_errors, type="date"),
            columns="2",
            spacing="3",
            width="100%",
        ),
        rx.el.label(
            rx.hstack(
                rx.checkbox(name="marketing_emails_consent", id="field-marketing"),
                rx.text("Send me product news (optional)", size="2"),
                spacing="2",
                align="center",
            )
        ),
        rx.button("Create account", type="submit", size="3", width="100%", id="register-submit"),
        rx.text("Already registered? ", rx.link("Log in", href="/login"), size="2"),
    )
