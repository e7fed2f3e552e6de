"""Account page: cash, deposit/withdraw with limits, ledger history, resetting the paper account."""

from __future__ import annotations

import reflex as rx

from cnop_app.components.layout import TABULAR, label_for, page, pager, stat
from cnop_app.domain.enums import CashMove
from cnop_app.state.account import AccountState


def _cash_form(kind: CashMove, limit: rx.Var, remaining: rx.Var) -> rx.Component:
    name = kind.value  # "deposit" / "withdraw": the form's `kind`, its error key and its element ids
    title = name.capitalize()
    input_id = f"{name}-amount"
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading(title, size="4"),
                label_for("Amount (USD)", input_id),
                rx.input(
                    id=input_id,
                    name="amount",
                    placeholder="0.00",
                    input_mode="decimal",
                    size="3",
                    width="100%",
                    required=True,
                ),
                rx.el.input(type="hidden", name="kind", value=name),
                rx.text(
                    "Daily limit ",
                    limit,
                    " · remaining today ",
                    remaining,
                    size="1",
                    color_scheme="gray",
                    id=f"{name}-remaining",
                ),
                rx.cond(
                    AccountState.cash_errors[name],
                    rx.text(
                        AccountState.cash_errors[name], color_scheme="red", size="2", role="alert", id=f"{name}-error"
                    ),
                ),
                rx.button(
                    title,
                    type="submit",
                    size="3",
                    width="100%",
                    id=f"{name}-submit",
                    variant="solid" if kind is CashMove.DEPOSIT else "outline",
                ),
                spacing="2",
                width="100%",
            ),
            on_submit=AccountState.review,
            reset_on_submit=True,
        ),
        width="100%",
    )


def _confirm_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(
                rx.cond(
                    AccountState.pending_kind == CashMove.DEPOSIT.value,
                    f"Confirm {CashMove.DEPOSIT.noun.lower()}",
                    f"Confirm {CashMove.WITHDRAW.noun.lower()}",
                )
            ),
            rx.alert_dialog.description(
                rx.cond(
                    AccountState.pending_kind == CashMove.DEPOSIT.value,
                    rx.text("Deposit ", rx.text.strong(AccountState.pending_amount), " into your cash balance?"),
                    rx.text("Withdraw ", rx.text.strong(AccountState.pending_amount), " from your cash balance?"),
                ),
                id="confirm-text",
            ),
            rx.hstack(
                rx.alert_dialog.cancel(
                    rx.button("Cancel", variant="soft", color_scheme="gray", on_click=AccountState.cancel_review)
                ),
                rx.alert_dialog.action(rx.button("Confirm", id="confirm-cash", on_click=AccountState.confirm)),
                spacing="3",
                justify="end",
                margin_top="1em",
            ),
        ),
        open=AccountState.pending_kind != "",
    )


def _history() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("History", size="4"),
                rx.spacer(),
                rx.text(AccountState.total_count, " entries", size="2", color_scheme="gray", id="history-count"),
                rx.button(
                    rx.icon("download", size=14),
                    "CSV",
                    size="1",
                    variant="soft",
                    on_click=AccountState.export_csv,
                    disabled=AccountState.total_count == 0,
                    id="history-export",
                    aria_label="Download the ledger as CSV",
                ),
                width="100%",
            ),
            rx.cond(
                AccountState.total_count == 0,
                rx.text(
                    "No transactions yet — make your first deposit above.", color_scheme="gray", id="history-empty"
                ),
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                rx.table.column_header_cell("When"),
                                rx.table.column_header_cell("Type"),
                                rx.table.column_header_cell("Description"),
                                rx.table.column_header_cell("Amount", text_align="right"),
                                rx.table.column_header_cell("Balance", text_align="right"),
                            )
                        ),
                        rx.table.body(
                            rx.foreach(
                                AccountState.history,
                                lambda row: rx.table.row(
                                    rx.table.cell(rx.tooltip(rx.text(row["when"]), content=row["exact"])),
                                    rx.table.cell(rx.badge(row["type"], variant="soft")),
                                    rx.table.cell(row["description"]),
                                    rx.table.cell(
                                        row["amount"],
                                        text_align="right",
                                        style=TABULAR,
                                        color=rx.cond(
                                            row["direction"] == "up", rx.color("grass", 11), rx.color("tomato", 11)
                                        ),
                                    ),
                                    rx.table.cell(row["balance_after"], text_align="right", style=TABULAR),
                                    class_name="history-row",
                                ),
                            )
                        ),
                        width="100%",
                        variant="surface",
                    ),
                    overflow_x="auto",
                    width="100%",
                ),
            ),
            pager(
                AccountState,
                rx.text("Page ", AccountState.page + 1, " of ", AccountState.page_count, size="2"),
                id_prefix="history",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


DEFAULT_STARTING_CASH = "10000.00"


def _reset_card() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Reset paper account", size="4"),
                rx.text(
                    "Start over: every open order is cancelled, every holding is sold at the current price (with the "
                    "usual fee) and your cash is set to the starting balance you choose. Your history is kept.",
                    size="2",
                    color_scheme="gray",
                ),
                rx.hstack(
                    rx.vstack(
                        label_for("Starting cash (USD)", "reset-starting-cash"),
                        rx.input(
                            id="reset-starting-cash",
                            name="starting_cash",
                            default_value=DEFAULT_STARTING_CASH,
                            input_mode="decimal",
                            required=True,
                            width="180px",
                        ),
                        spacing="1",
                    ),
                    rx.button(
                        rx.icon("rotate-ccw", size=14),
                        "Reset account…",
                        type="submit",
                        variant="outline",
                        color_scheme="red",
                        id="reset-review",
                    ),
                    align="end",
                    spacing="3",
                    wrap="wrap",
                ),
                rx.cond(
                    AccountState.reset_error != "",
                    rx.text(AccountState.reset_error, color_scheme="red", size="2", role="alert", id="reset-error"),
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=AccountState.review_reset,
            reset_on_submit=False,
        ),
        width="100%",
    )


def _reset_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Reset your paper account?"),
            rx.alert_dialog.description(
                rx.vstack(
                    rx.text(AccountState.reset_summary),
                    rx.text("Your cash will then be set to ", rx.text.strong(AccountState.reset_amount), "."),
                    rx.text("Past orders, fills and ledger entries stay in your history.", color_scheme="gray"),
                    spacing="2",
                ),
                id="reset-confirm-text",
            ),
            rx.hstack(
                rx.alert_dialog.cancel(
                    rx.button(
                        "Keep my account", variant="soft", color_scheme="gray", on_click=AccountState.cancel_reset
                    )
                ),
                rx.alert_dialog.action(
                    rx.button(
                        "Reset account", color_scheme="red", id="reset-confirm", on_click=AccountState.confirm_reset
                    )
                ),
                spacing="3",
                justify="end",
                margin_top="1em",
            ),
        ),
        open=AccountState.reset_review,
    )


def account() -> rx.Component:
    return page(
        rx.cond(
            AccountState.loading,
            rx.vstack(
                rx.skeleton(height="80px", width="100%"), rx.skeleton(height="240px", width="100%"), width="100%"
            ),
            rx.vstack(
                rx.grid(
                    stat("Cash balance", AccountState.balance, id="cash-balance"),
                    stat("Available to trade or withdraw", AccountState.available, id="cash-available"),
                    stat("Held by open orders", AccountState.held, id="cash-held"),
                    columns=rx.breakpoints(initial="1", sm="3"),
                    spacing="4",
                    width="100%",
                ),
                rx.grid(
                    _cash_form(CashMove.DEPOSIT, AccountState.deposit_limit, AccountState.deposit_remaining),
                    _cash_form(CashMove.WITHDRAW, AccountState.withdraw_limit, AccountState.withdraw_remaining),
                    columns=rx.breakpoints(initial="1", sm="2"),
                    spacing="4",
                    width="100%",
                ),
                _history(),
                _reset_card(),
                spacing="4",
                width="100%",
            ),
        ),
        _confirm_dialog(),
        _reset_dialog(),
        title="Account",
    )
