"""Account page: balance, deposit and withdraw with daily limits, ledger history."""

from __future__ import annotations

import uuid
from decimal import Decimal

import reflex as rx

from cnop_app import formatting
from cnop_app.domain.errors import DomainError
from cnop_app.domain.money import parse_decimal
from cnop_app.services import accounts
from cnop_app.state.auth import AuthState

PAGE_SIZE = 20


class AccountState(AuthState):
    loading: bool = True
    balance: str = "—"
    held: str = "—"
    available: str = "—"
    deposit_limit: str = ""
    deposit_remaining: str = ""
    withdraw_limit: str = ""
    withdraw_remaining: str = ""
    history: list[dict[str, str]] = []
    total_count: int = 0
    page: int = 0
    cash_errors: dict[str, str] = {}
    # A confirmation step before money moves: what would happen, with exact amounts.
    pending_kind: str = ""
    pending_amount: str = ""
    # One key per confirmed request: a double click or a retry cannot move money twice.
    _pending_key: str = ""
    _pending_amount_exact: str = ""

    @rx.var
    def page_count(self) -> int:
        return max(1, (self.total_count + PAGE_SIZE - 1) // PAGE_SIZE)

    @rx.var
    def has_next(self) -> bool:
        return (self.page + 1) * PAGE_SIZE < self.total_count

    @rx.var
    def has_prev(self) -> bool:
        return self.page > 0

    def _refresh(self, username: str) -> None:
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
        self.history = [
            {
                "id": r.transaction_id,
                "type": r.transaction_type.replace("_", " "),
                "amount": formatting.usd(r.amount),
                "direction": formatting.direction(r.amount),
                "balance_after": formatting.usd(r.balance_after),
                "description": r.description,
                "when": formatting.relative_time(r.created_at),
                "exact": formatting.utc_exact(r.created_at),
            }
            for r in rows
        ]
        self.loading = False

    @rx.event
    def load(self) -> rx.event.EventSpec | list[rx.event.EventSpec] | None:
        principal = self.principal()
        if principal is None:
            return AuthState.require_login
        self.page = 0
        self._refresh(principal.username)
        return None

    @rx.event
    def next_page(self) -> None:
        principal = self.principal()
        if principal is not None and self.has_next:
            self.page += 1
            self._refresh(principal.username)

    @rx.event
    def prev_page(self) -> None:
        principal = self.principal()
        if principal is not None and self.page > 0:
            self.page -= 1
            self._refresh(principal.username)

    @rx.event
    def export_csv(self) -> rx.event.EventSpec | None:
        principal = self.principal()
        if principal is None:
            return AuthState.require_login
        return rx.download(data=accounts.ledger_csv(principal.username), filename="cnop-ledger.csv")

    @rx.event
    def review(self, form: dict) -> None:
        """Validate and show the confirmation; nothing moves yet."""
        kind = form.get("kind", "")
        self.cash_errors = {}
        if kind not in ("deposit", "withdraw"):
            return
        try:
            amount = accounts.validate_amount(parse_decimal(form.get("amount", ""), "amount"))
        except DomainError as exc:
            self.cash_errors = {kind: exc.message}
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
    def confirm(self) -> rx.event.EventSpec | list[rx.event.EventSpec] | None:
        principal = self.principal()
        if principal is None:
            return AuthState.require_login
        kind, key = self.pending_kind, self._pending_key
        if kind not in ("deposit", "withdraw") or not key:
            return None
        move = accounts.deposit if kind == "deposit" else accounts.withdraw
        try:
            result = move(principal.username, Decimal(self._pending_amount_exact), key)
        except DomainError as exc:
            self.cash_errors = {kind: exc.message}
            self.pending_kind = ""
            return None
        self.pending_kind = ""
        self._pending_key = ""
        self.page = 0
        self._refresh(principal.username)
        verb = "Deposited" if kind == "deposit" else "Withdrew"
        return rx.toast.success(f"{verb} {formatting.usd(Decimal(result.amount))}")
