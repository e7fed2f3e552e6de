"""Account page: balance, deposit and withdraw with daily limits, ledger history, and resetting the
paper account."""

from __future__ import annotations

import uuid
from decimal import Decimal

import reflex as rx

from cnop_app import formatting
from cnop_app.domain.admin import parse_starting_cash
from cnop_app.domain.enums import CashMove, values
from cnop_app.domain.errors import DomainError
from cnop_app.domain.money import parse_decimal
from cnop_app.services import account_reset, accounts, portfolio, trading
from cnop_app.services.auth import Principal
from cnop_app.state.auth import AuthState, signed_in
from cnop_app.state.pager import PagerMixin
from cnop_app.state.rows import CashErrors, LedgerRow, one_error

PAGE_SIZE = 20
CASH_MOVES = values(CashMove)
PAST_TENSE = {CashMove.DEPOSIT: "Deposited", CashMove.WITHDRAW: "Withdrew"}


def ledger_row(r: accounts.LedgerView) -> LedgerRow:
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
    # Resetting the paper account: reviewed in a dialog with what will happen, then confirmed once.
    reset_error: str = ""
    reset_review: bool = False
    reset_amount: str = ""
    reset_orders: int = 0
    reset_positions: int = 0
    reset_summary: str = ""
    _reset_amount_exact: str = ""
    _reset_key: str = ""

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
        self.history = [ledger_row(r) for r in rows]
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

    @rx.event
    @signed_in
    def review_reset(self, principal: Principal, form: dict) -> None:
        """Validate the starting cash and show what the reset will do; nothing changes yet."""
        self.reset_error = ""
        try:
            amount = parse_starting_cash(form.get("starting_cash", ""))
        except DomainError as exc:
            self.reset_error = exc.message
            return
        self.reset_orders = len(trading.list_open_orders(principal.username))
        self.reset_positions = sum(1 for h in portfolio.get_portfolio(principal.username).holdings if h.quantity > 0)
        orders = "1 open order" if self.reset_orders == 1 else f"{self.reset_orders} open orders"
        holdings = "1 holding" if self.reset_positions == 1 else f"{self.reset_positions} holdings"
        self.reset_summary = f"{orders} will be cancelled and {holdings} sold at the current price, with the usual fee."
        self.reset_amount = formatting.usd(amount)
        self._reset_amount_exact = str(amount)
        self._reset_key = uuid.uuid4().hex
        self.reset_review = True

    @rx.event
    @signed_in
    def cancel_reset(self, principal: Principal) -> None:
        self.reset_review = False
        self._reset_key = ""

    @rx.event
    @signed_in
    def confirm_reset(self, principal: Principal) -> rx.event.EventSpec | None:
        if not self.reset_review or not self._reset_key:
            return None  # a second click of the same confirmation
        self._reset_key = ""
        self.reset_review = False
        try:
            result = account_reset.reset_account(
                principal.username, Decimal(self._reset_amount_exact), ip=self._client_ip()
            )
        except DomainError as exc:
            self.reset_error = exc.message
            return None
        self._first_page(principal.username)
        closed = len(result.closed_positions)
        return rx.toast.success(
            f"Account reset: {result.cancelled_orders} order(s) cancelled, {closed} position(s) closed, "
            f"cash {formatting.usd(result.cash_after)}"
        )
