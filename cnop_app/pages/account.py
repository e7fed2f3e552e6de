"""Account page: cash, deposit/withdraw with limits, ledger history."""

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
                spacing="4",
                width="100%",
            ),
        ),
        _confirm_dialog(),
        title="Account",
    )
