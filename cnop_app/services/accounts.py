"""Cash accounts and the append-only ledger.

Every balance change is one LedgerEntry written in the same transaction as the new balance, with
the account row locked; the balance always equals the sum of the user's entries.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import datetime, time, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from cnop_app.config import get_settings
from cnop_app.db import UnitOfWork, read_session, unit_of_work
from cnop_app.domain.cash import MAX_CASH_MOVE, available, require_funds, require_non_negative
from cnop_app.domain.enums import CashMove, LedgerType
from cnop_app.domain.errors import BusinessRuleViolation, NotFound, ValidationFailed
from cnop_app.domain.ids import new_id
from cnop_app.domain.money import money_str, parse_decimal, to_cents
from cnop_app.domain.paging import check_page
from cnop_app.hot_query import HotQuery
from cnop_app.models import Account, LedgerEntry
from cnop_app.observability.metrics import CASH_MOVES
from cnop_app.read_path import read_connection
from cnop_app.services import idempotency, outbox


@dataclass(frozen=True)
class Balance:
    username: str
    current_balance: Decimal
    held: Decimal
    available: Decimal
    updated_at: datetime


@dataclass(frozen=True)
class CashResult:
    """The outcome of a deposit or withdrawal (what an idempotent retry returns)."""

    transaction_id: str
    transaction_type: str
    amount: str
    balance_after: str
    timestamp: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LedgerView:
    transaction_id: str
    transaction_type: str
    amount: Decimal
    balance_after: Decimal
    reference: str | None
    description: str
    status: str
    created_at: datetime


@dataclass(frozen=True)
class Allowance:
    deposit_limit: Decimal
    deposited_today: Decimal
    deposit_remaining: Decimal
    withdraw_limit: Decimal
    withdrawn_today: Decimal
    withdraw_remaining: Decimal


def lock_account(session: Session, username: str) -> Account:
    """The account row, locked for this transaction (FOR UPDATE; SQLite already holds the write lock)."""
    account = session.exec(select(Account).where(Account.username == username).with_for_update()).first()
    if account is None:
        raise NotFound("Account not found")
    return account


def ledger_row(
    username: str,
    cash: Decimal,
    entry_type: LedgerType,
    amount: Decimal,
    *,
    reference: str | None = None,
    description: str = "",
    now: datetime | None = None,
) -> tuple[Decimal, dict[str, Any]]:
    """A signed cash change: the new cash (never negative) and the ledger row that records it."""
    entry_type = LedgerType(entry_type)  # an unknown type is a programming error (ValueError)
    new_cash = cash + amount
    require_non_negative(new_cash)
    row = {
        "transaction_id": new_id(),
        "username": username,
        "entry_type": entry_type,
        "amount": amount,
        "balance_after": new_cash,
        "reference": reference,
        "description": description[:255],
        "created_at": now or datetime.now(timezone.utc),
    }
    return new_cash, row


def post_entry(
    session: Session,
    account: Account,
    entry_type: LedgerType,
    amount: Decimal,
    *,
    reference: str | None = None,
    description: str = "",
    now: datetime | None = None,
) -> LedgerEntry:
    """Apply a signed cash change to a locked account and append its ledger entry."""
    now = now or datetime.now(timezone.utc)
    new_cash, row = ledger_row(
        account.username, account.cash, entry_type, amount, reference=reference, description=description, now=now
    )
    account.cash = new_cash
    account.version += 1
    account.updated_at = now
    session.add(account)
    entry = LedgerEntry(**row)
    session.add(entry)
    outbox.emit(session, "ledger", entry.transaction_id, entry)
    outbox.emit(session, "balance", account.username, account)
    return entry


def validate_amount(value: object) -> Decimal:
    amount = parse_decimal(value, "amount", max_places=2)
    if amount <= 0:
        raise ValidationFailed("amount must be greater than 0", "amount")
    if amount > MAX_CASH_MOVE:
        raise ValidationFailed("amount must be at most 1,000,000", "amount")
    return to_cents(amount)


def _day_start(now: datetime) -> datetime:
    return datetime.combine(now.date(), time.min, tzinfo=timezone.utc)


_ledger = LedgerEntry.__table__  # type: ignore[attr-defined]
_accounts = Account.__table__  # type: ignore[attr-defined]
_TODAY_MOVES = HotQuery(
    sa_select(_ledger.c.entry_type, _ledger.c.amount).where(
        _ledger.c.username == bindparam("username"),
        # Two equalities, not IN: an IN list is an "expanding" parameter that SQLAlchemy re-renders into
        # the SQL on every execution; this statement compiles once (the balance read runs per request).
        or_(_ledger.c.entry_type == LedgerType.DEPOSIT.value, _ledger.c.entry_type == LedgerType.WITHDRAW.value),
        _ledger.c.created_at >= bindparam("since"),
    )
)
_BALANCE = HotQuery(
    sa_select(_accounts.c.cash, _accounts.c.held, _accounts.c.updated_at).where(
        _accounts.c.username == bindparam("username")
    )
)


def _today_totals(conn: Connection, username: str, now: datetime) -> dict[str, Decimal]:
    """Today's deposits and withdrawals of `username` (absolute amounts), summed exactly in Python:
    SQLite keeps the amounts as decimal text. One range scan of ix_ledger_user_type_created."""
    totals = {LedgerType.DEPOSIT.value: Decimal(0), LedgerType.WITHDRAW.value: Decimal(0)}
    for entry_type, amount in _TODAY_MOVES.rows(conn, {"username": username, "since": _day_start(now)}):
        totals[entry_type] += abs(amount)
    return totals


def _today_total(session: Session, username: str, entry_type: LedgerType, now: datetime) -> Decimal:
    return _today_totals(session.connection(), username, now)[LedgerType(entry_type).value]


def allowance(username: str) -> Allowance:
    settings = get_settings()
    with read_connection() as conn:
        totals = _today_totals(conn, username, datetime.now(timezone.utc))
    deposited, withdrawn = totals[LedgerType.DEPOSIT.value], totals[LedgerType.WITHDRAW.value]
    return Allowance(
        deposit_limit=settings.daily_deposit_limit,
        deposited_today=deposited,
        deposit_remaining=max(Decimal(0), settings.daily_deposit_limit - deposited),
        withdraw_limit=settings.daily_withdraw_limit,
        withdrawn_today=withdrawn,
        withdraw_remaining=max(Decimal(0), settings.daily_withdraw_limit - withdrawn),
    )


def _daily_limit(kind: CashMove) -> Decimal:
    settings = get_settings()
    return settings.daily_deposit_limit if kind is CashMove.DEPOSIT else settings.daily_withdraw_limit


def move_cash(
    username: str, kind: CashMove, raw_amount: object, idempotency_key: object = None, *, uow: UnitOfWork | None = None
) -> CashResult:
    """Deposit or withdraw: daily limit, available cash, one ledger entry; idempotent with a key."""
    kind = CashMove(kind)
    amount = validate_amount(raw_amount)
    key = idempotency.check_key(idempotency_key)
    req_hash = idempotency.request_hash({"kind": kind.value, "amount": str(amount)})
    limit = _daily_limit(kind)
    with unit_of_work(uow) as work:
        session = work.session
        account = lock_account(session, username)
        if key is not None:
            prior = idempotency.lookup(session, username, kind, key, req_hash)
            if prior is not None:
                return CashResult(**prior)
        now = datetime.now(timezone.utc)
        used = _today_total(session, username, kind.ledger_type, now)
        if used + amount > limit:
            remaining = max(Decimal(0), limit - used)
            raise BusinessRuleViolation(
                f"Daily {kind} limit of ${money_str(limit)} exceeded: ${money_str(remaining)} remaining today",
                "amount",
            )
        if kind is CashMove.WITHDRAW:
            require_funds(account.cash, account.held, amount, "amount")
        entry = post_entry(session, account, kind.ledger_type, kind.sign * amount, description=kind.noun, now=now)
        result = CashResult(
            transaction_id=entry.transaction_id,
            transaction_type=kind.value,
            amount=money_str(amount) or "0.00",
            balance_after=money_str(entry.balance_after) or "0.00",
            timestamp=now.isoformat(),
            message=f"{kind.noun} of ${money_str(amount)} completed",
        )
        if key is not None:
            idempotency.store(session, username, kind, key, req_hash, result.as_dict())
        work.on_commit(lambda: CASH_MOVES.labels(kind.value).inc())
    return result


def deposit(
    username: str, amount: object, idempotency_key: object = None, *, uow: UnitOfWork | None = None
) -> CashResult:
    return move_cash(username, CashMove.DEPOSIT, amount, idempotency_key, uow=uow)


def withdraw(
    username: str, amount: object, idempotency_key: object = None, *, uow: UnitOfWork | None = None
) -> CashResult:
    return move_cash(username, CashMove.WITHDRAW, amount, idempotency_key, uow=uow)


def get_balance(username: str) -> Balance:
    with read_connection() as conn:
        row = _BALANCE.first(conn, {"username": username})
    if row is None:
        raise NotFound("Account not found")
    return Balance(
        username=username,
        current_balance=row.cash,
        held=row.held,
        available=available(row.cash, row.held),
        updated_at=row.updated_at,
    )


def list_transactions(username: str, limit: int = 50, offset: int = 0) -> tuple[list[LedgerView], int]:
    """Ledger entries newest first, with the total count for pagination."""
    check_page(limit, offset)
    with read_session() as session:
        total = session.exec(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.username == username)
        ).one()
        rows = session.exec(
            select(LedgerEntry)
            .where(LedgerEntry.username == username)
            .order_by(LedgerEntry.id.desc())  # type: ignore[union-attr]
            .offset(offset)
            .limit(limit)
        ).all()
    return (
        [
            LedgerView(
                transaction_id=r.transaction_id,
                transaction_type=r.entry_type,
                amount=r.amount,
                balance_after=r.balance_after,
                reference=r.reference,
                description=r.description,
                status="completed",
                created_at=r.created_at,
            )
            for r in rows
        ],
        int(total),
    )


def ledger_sum(username: str) -> Decimal:
    """Replay the ledger (the invariant: equals the stored balance)."""
    with read_session() as session:
        amounts = session.exec(select(LedgerEntry.amount).where(LedgerEntry.username == username)).all()
    total = Decimal(0)
    for amount in amounts:
        total += amount
    return total


CSV_COLUMNS = ("created_at", "transaction_id", "type", "amount", "balance_after", "reference", "description")


def ledger_csv(username: str) -> str:
    """The whole ledger, oldest first, as CSV with ISO dates and exact amounts (for export)."""
    with read_session() as session:
        rows = session.exec(
            select(LedgerEntry).where(LedgerEntry.username == username).order_by(LedgerEntry.id)  # type: ignore[arg-type]
        ).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                r.created_at.isoformat(),
                r.transaction_id,
                r.entry_type,
                money_str(r.amount),
                money_str(r.balance_after),
                r.reference or "",
                r.description,
            ]
        )
    return out.getvalue()
