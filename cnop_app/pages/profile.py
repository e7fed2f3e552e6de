"""Profile page: details, password, sessions."""

from __future__ import annotations

import reflex as rx

from cnop_app.components.layout import field, form_error, page
from cnop_app.state.profile import ProfileState


def _details() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Profile", size="4"),
                rx.text(
                    "Username ",
                    rx.code(ProfileState.username),
                    " · member since ",
                    ProfileState.member_since,
                    size="2",
                    color_scheme="gray",
                ),
                form_error(ProfileState.profile_errors["form"].to(str)),
                rx.grid(
                    field(
                        "First name", "first_name", ProfileState.profile_errors, default_value=ProfileState.first_name
                    ),
                    field("Last name", "last_name", ProfileState.profile_errors, default_value=ProfileState.last_name),
                    columns="2",
                    spacing="3",
                    width="100%",
                ),
                field("Email", "email", ProfileState.profile_errors, type="email", default_value=ProfileState.email),
                rx.grid(
                    field("Phone", "phone", ProfileState.profile_errors, type="tel", default_value=ProfileState.phone),
                    field(
                        "Date of birth",
                        "date_of_birth",
                        ProfileState.profile_errors,
                        type="date",
                        default_value=ProfileState.date_of_birth,
                    ),
                    columns="2",
                    spacing="3",
                    width="100%",
                ),
                rx.el.label(
                    rx.hstack(
                        rx.checkbox(
                            name="marketing_emails_consent", default_checked=ProfileState.marketing_emails_consent
                        ),
                        rx.text("Send me product news", size="2"),
                        spacing="2",
                    )
                ),
                rx.button("Save profile", type="submit", id="profile-save"),
                spacing="3",
                width="100%",
            ),
            on_submit=ProfileState.save_profile,
            reset_on_submit=False,
            key=ProfileState.email,
        ),
        width="100%",
    )


def _password() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Change password", size="4"),
                form_error(ProfileState.password_errors["form"].to(str)),
                field(
                    "Current password",
                    "current_password",
                    ProfileState.password_errors,
                    type="password",
                    auto_complete="current-password",
                ),
                field(
                    "New password",
                    "new_password",
                    ProfileState.password_errors,
                    type="password",
                    auto_complete="new-password",
                ),
                field(
                    "Confirm new password",
                    "confirm_password",
                    ProfileState.password_errors,
                    type="password",
                    auto_complete="new-password",
                ),
                rx.text("Changing the password signs out your other sessions.", size="1", color_scheme="gray"),
                rx.button("Change password", type="submit", id="password-save"),
                spacing="3",
                width="100%",
            ),
            on_submit=ProfileState.change_password,
            reset_on_submit=True,
        ),
        width="100%",
    )


def _sessions() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Active sessions", size="4"),
            rx.box(
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            rx.table.column_header_cell("Signed in"),
                            rx.table.column_header_cell("Client"),
                            rx.table.column_header_cell("IP"),
                            rx.table.column_header_cell(""),
                        )
                    ),
                    rx.table.body(
                        rx.foreach(
                            ProfileState.sessions,
                            lambda s: rx.table.row(
                                rx.table.cell(rx.tooltip(rx.text(s["issued"]), content=s["exact"])),
                                rx.table.cell(s["agent"]),
                                rx.table.cell(s["ip"]),
                                rx.table.cell(
                                    rx.cond(
                                        s["current"] == "yes",
                                        rx.badge("this browser", color_scheme="green"),
                                        rx.button(
                                            "Sign out",
                                            size="1",
                                            variant="soft",
                                            color_scheme="red",
                                            on_click=ProfileState.revoke(s["id"]),
                                        ),
                                    )
                                ),
                            ),
                        )
                    ),
                    width="100%",
                ),
                overflow_x="auto",
                width="100%",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def profile() -> rx.Component:
    return page(
        rx.cond(
            ProfileState.loading,
            rx.skeleton(height="300px", width="100%"),
            rx.grid(
                _details(),
                rx.vstack(_password(), width="100%"),
                columns=rx.breakpoints(initial="1", md="2"),
                spacing="4",
                width="100%",
            ),
        ),
        rx.box(_sessions(), margin_top="1em"),
        title="Profile",
    )
