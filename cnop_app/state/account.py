"""Account page: balance, deposit and withdraw with daily limits, ledger history."""

from __future__ import annotations

import uuid
from decimal import Decimal

import reflex as rx

from cnop_app import formatting
from cnop_app.domain.enums import CashMove, values
from cnop_app.domain.errors import DomainError
from cnop_app.domain.money import parse_decimal
from cnop_app.services import accounts
from cnop_app.services.auth import Principal
from cnop_app.state.auth import AuthState, signed_in
from cnop_app.state.pager import PagerMixin
from cnop_app.state.rows import CashErrors, LedgerRow, one_error

PAGE_SIZE = 20
CASH_MOVES = values(CashMove)
PAST_TENSE = {CashMove.DEPOSIT: "Deposited", CashMove.WITHDRAW: "Withdrew"}


def _ledger_row(r: accounts.LedgerView) -> LedgerRow:
    return LedgerRow(
        id=r.transaction_id,
        type=r.transaction_type.replace("_", " "),
        amount=formatting.usd(r.amount),
        direction=formatting.direction(r.amount),
        balance_after=formatting.usd(r.balance_after),
        description=r.description,
        when=formatting.relative_time(r.created_at),
        exact=formatting.utc_exact(r.created_at),
    )


class AccountState(PagerMixin, AuthState):
    loading: bool = True
    balance: str = "—"
    held: str = "—"
    available: str = "—"
    deposit_limit: str = ""
    deposit_remaining: str = ""
    withdraw_limit: str = ""
    withdraw_remaining: str = ""
    history: list[LedgerRow] = []
    total_count: int = 0
    cash_errors: CashErrors = {}
    # A confirmation step before money moves: what would happen, with exact amounts.
    pending_kind: str = ""  # a CashMove value, or "" when nothing waits for confirmation
    pending_amount: str = ""
    # One key per confirmed request: a double click or a retry cannot move money twice.
    _pending_key: str = ""
    _pending_amount_exact: str = ""

    @rx.var
    def page_count(self) -> int:
        return max(1, (self.total_count + PAGE_SIZE - 1) // PAGE_SIZE)

    def _load_page(self, username: str) -> None:
        bal = accounts.get_balance(username)
        allowance = accounts.allowance(username)
        self.balance = formatting.usd(bal.current_balance)
        self.held = formatting.usd(bal.held)
        self.available = formatting.usd(bal.available)
        self.deposit_limit = formatting.usd(allowance.deposit_limit)
        self.deposit_remaining = formatting.usd(allowance.deposit_remaining)
        self.withdraw_limit = formatting.usd(allowance.withdraw_limit)
        self.withdraw_remaining = formatting.usd(allowance.withdraw_remaining)
        rows, total = accounts.list_transactions(username, PAGE_SIZE, self.page * PAGE_SIZE)
        self.total_count = total
        self.has_more = (self.page + 1) * PAGE_SIZE < total
        self.history = [_ledger_row(r) for r in rows]
        self.loading = False

    @rx.event
    @signed_in
    def load(self, principal: Principal) -> None:
        self._first_page(principal.username)

    @rx.event
    @signed_in
    def export_csv(self, principal: Principal) -> rx.event.EventSpec:
        return rx.download(data=accounts.ledger_csv(principal.username), filename="cnop-ledger.csv")

    @rx.event
    def review(self, form: dict) -> None:
        """Validate and show the confirmation; nothing moves yet."""
        kind = form.get("kind", "")
        self.cash_errors = {}
        if kind not in CASH_MOVES:
            return
        try:
            amount = accounts.validate_amount(parse_decimal(form.get("amount", ""), "amount"))
        except DomainError as exc:
            self.cash_errors = one_error(CashErrors, kind, exc.message)
            return
        self.pending_kind = kind
        self.pending_amount = formatting.usd(amount)
        self._pending_amount_exact = str(amount)
        self._pending_key = uuid.uuid4().hex

    @rx.event
    def cancel_review(self) -> None:
        self.pending_kind = ""
        self.pending_amount = ""
        self._pending_key = ""

    @rx.event
    @signed_in
    def confirm(self, principal: Principal) -> rx.event.EventSpec | None:
        kind, key = self.pending_kind, self._pending_key
        if kind not in CASH_MOVES or not key:
            return None
        move = CashMove(kind)
        do_move = accounts.deposit if move is CashMove.DEPOSIT else accounts.withdraw
        try:
            result = do_move(principal.username, Decimal(self._pending_amount_exact), key)
        except DomainError as exc:
            self.cash_errors = one_error(CashErrors, kind, exc.message)
            self.pending_kind = ""
            return None
        self.pending_kind = ""
        self._pending_key = ""
        self._first_page(principal.username)
        return rx.toast.success(f"{PAST_TENSE[move]} {formatting.usd(Decimal(result.amount))}")
