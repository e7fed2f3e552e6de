"""/admin: users, sessions, orders and volume today, the price feed, the DynamoDB mirror, the database,
recent errors and the ledger integrity check; live."""

from __future__ import annotations

import reflex as rx

from cnop_app.components.admin import admin_page, empty, figure, header, line, table
from cnop_app.components.layout import TABULAR
from cnop_app.state.admin_overview import POLL_SECONDS, AdminOverviewState

S = AdminOverviewState
F = AdminOverviewState.figures


def _figures() -> rx.Component:
    return rx.grid(
        figure("Users", F["users_total"], id="ov-users", hint=F["users_hint"]),
        figure("Active now", F["users_active_now"], id="ov-active", hint=F["active_hint"]),
        figure("Open sessions", F["sessions_open"], id="ov-sessions", hint=F["sessions_hint"]),
        figure("Orders today", F["orders_today"], id="ov-orders", hint=F["orders_hint"]),
        figure("Volume today", F["volume_today"], id="ov-volume", hint="gross value of today's fills"),
        figure("Open limit orders", F["open_limit_orders"], id="ov-open-limits", hint="pending, every user"),
        columns=rx.breakpoints(initial="2", sm="3", lg="6"),
        spacing="3",
        width="100%",
    )


def _feed() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Price feed", size="3"),
                rx.spacer(),
                rx.badge(F["feed_label"], color_scheme=F["feed_colour"], id="ov-feed-label"),
                width="100%",
            ),
            line("Source", F["feed_source"]),
            line("Last success", rx.tooltip(rx.text(F["feed_as_of"]), content=F["feed_as_of_exact"])),
            line("Last attempt", F["feed_outcome"]),
            line("Circuit breaker", rx.badge(F["feed_breaker"], color_scheme=F["feed_breaker_colour"])),
            line("Consecutive failures", F["feed_failures"]),
            line("Mode / interval", rx.text(F["feed_mode"], " · every ", F["feed_interval"])),
            line("Next refresh", rx.tooltip(rx.text(F["feed_next"]), content=F["feed_next_exact"])),
            rx.cond(
                F["feed_error"] != "",
                rx.text("Last error: ", F["feed_error"], size="1", color_scheme="red", id="ov-feed-error"),
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


def _mirror() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("DynamoDB mirror", size="3"),
                rx.spacer(),
                rx.badge(F["mirror_status"], color_scheme=F["mirror_colour"], id="ov-mirror-status"),
                width="100%",
            ),
            rx.cond(
                F["mirror_enabled"] == "yes",
                rx.vstack(
                    line("Backlog (outbox rows)", F["mirror_depth"]),
                    line("Lag (oldest undrained)", F["mirror_lag"]),
                    line("Failing rows", F["mirror_failing"]),
                    line("DynamoDB reachable", F["mirror_reachable"]),
                    rx.cond(
                        F["mirror_error"] != "",
                        rx.text("Last error: ", F["mirror_error"], size="1", color_scheme="red"),
                    ),
                    spacing="2",
                    width="100%",
                ),
                rx.text(
                    "The mirror is off in this deployment: changes stay in the database only.",
                    size="2",
                    color_scheme="gray",
                ),
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


def _database() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Database", size="3"),
            line("Backend", F["db_backend"]),
            line("Size", F["db_size"], id="ov-db-size"),
            rx.text("Figures as of ", F["generated"], size="1", color_scheme="gray", id="ov-generated"),
            rx.text(f"Updates every {POLL_SECONDS:.0f} s while this page is open.", size="1", color_scheme="gray"),
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


def _integrity() -> rx.Component:
    i = S.integrity
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Integrity check", size="3"),
                rx.spacer(),
                rx.button(
                    rx.icon("shield-check", size=14),
                    "Run check",
                    size="1",
                    variant="soft",
                    on_click=S.run_integrity_check,
                    id="ov-run-integrity",
                ),
                width="100%",
                align="center",
            ),
            rx.text(
                "Every account's cash and held cash is rebuilt from the ledger and the open orders, and every "
                "holding from the fills, then compared with the stored rows.",
                size="2",
                color_scheme="gray",
            ),
            rx.cond(
                i["ok"] == "yes",
                rx.callout(i["summary"], icon="circle-check", color_scheme="green", id="ov-integrity", width="100%"),
                rx.callout(i["summary"], icon="triangle-alert", color_scheme="red", id="ov-integrity", width="100%"),
            ),
            rx.text(i["counts"], " · checked ", i["checked"], size="1", color_scheme="gray"),
            rx.cond(
                S.differences.length() > 0,
                table(
                    header("Account", "Figure", ("Stored", "right"), ("Rebuilt", "right"), "Note"),
                    rx.table.body(
                        rx.foreach(
                            S.differences,
                            lambda d: rx.table.row(
                                rx.table.cell(d["where"]),
                                rx.table.cell(d["figure"]),
                                rx.table.cell(d["stored"], text_align="right", style=TABULAR),
                                rx.table.cell(d["expected"], text_align="right", style=TABULAR),
                                rx.table.cell(d["note"]),
                                class_name="difference-row",
                            ),
                        )
                    ),
                ),
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


def _errors() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Recent errors (this worker)", size="3"),
            rx.cond(
                S.errors.length() == 0,
                empty("No errors logged by this worker since it started.", id="ov-no-errors"),
                table(
                    header("When", "Logger", "Message", "Error", "Request"),
                    rx.table.body(
                        rx.foreach(
                            S.errors,
                            lambda e: rx.table.row(
                                rx.table.cell(rx.tooltip(rx.text(e["when"]), content=e["exact"])),
                                rx.table.cell(rx.code(e["logger"], size="1")),
                                rx.table.cell(rx.text(e["message"], size="1"), white_space="normal", min_width="240px"),
                                rx.table.cell(e["error"]),
                                rx.table.cell(rx.code(e["request_id"], size="1")),
                                class_name="error-row",
                            ),
                        )
                    ),
                    max_height="320px",
                    overflow_y="auto",
                ),
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


def overview() -> rx.Component:
    return admin_page(
        "overview",
        rx.cond(
            S.loading,
            rx.vstack(
                rx.skeleton(height="90px", width="100%"), rx.skeleton(height="300px", width="100%"), width="100%"
            ),
            rx.vstack(
                _figures(),
                rx.grid(
                    _feed(),
                    _mirror(),
                    _database(),
                    columns=rx.breakpoints(initial="1", md="3"),
                    spacing="3",
                    width="100%",
                ),
                rx.grid(
                    _integrity(),
                    _errors(),
                    columns=rx.breakpoints(initial="1", lg="2"),
                    spacing="3",
                    width="100%",
                ),
                spacing="3",
                width="100%",
            ),
        ),
        title="Admin",
    )
