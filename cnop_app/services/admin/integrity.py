"""The integrity check: rebuild every balance and holding from the history and compare with the rows.

- cash of each account = the sum of its ledger entries, and each entry's `balance_after` = the
  running sum (the first break per user is reported: later entries inherit it);
- held cash = what the user's pending limit buys hold;
- each holding's quantity, average cost and realized P&L = the replay of its fills
  (`cnop_app.domain.replay`, the fill arithmetic), held quantity = its pending limit sells.

Everything is read in one snapshot (one read transaction; REPEATABLE READ on PostgreSQL), so trading
meanwhile cannot show up as a difference. `python -m cnop_app.manage verify-ledger` prints the report.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlmodel import Session, col, select

from cnop_app.db import read_engine
from cnop_app.domain.enums import OrderStatus, OrderType
from cnop_app.domain.money import decimal_str
from cnop_app.domain.replay import HoldingState, apply_fill
from cnop_app.domain.timeutil import utcnow
from cnop_app.models import Account, AssetTransaction, Holding, LedgerEntry, Order

ZERO = Decimal(0)


@dataclass(frozen=True)
class Difference:
    """One stored figure that the history does not support. `expected` is the rebuilt value;
    None on either side means the row is missing."""

    username: str
    asset_id: str | None
    figure: str  # cash, held_cash, balance_after, quantity, held_quantity, average_cost, realized_pnl
    stored: Decimal | None
    expected: Decimal | None
    note: str = ""

    def describe(self) -> str:
        where = f"{self.username}/{self.asset_id}" if self.asset_id else self.username
        stored = "missing" if self.stored is None else decimal_str(self.stored)
        expected = "missing" if self.expected is None else decimal_str(self.expected)
        text = f"{where}: {self.figure} stored {stored}, rebuilt {expected}"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class IntegrityReport:
    checked_at: datetime
    accounts: int
    holdings: int
    ledger_entries: int
    fills: int
    pending_orders: int
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def lines(self) -> list[str]:
        """The report as text: every difference, then a summary line."""
        summary = (
            f"{len(self.differences)} difference(s)" if self.differences else "OK: every balance and holding matches"
        )
        counts = (
            f"{self.accounts} accounts, {self.holdings} holdings, {self.ledger_entries} ledger entries, "
            f"{self.fills} fills, {self.pending_orders} pending orders checked"
        )
        return [d.describe() for d in self.differences] + [f"{summary}; {counts}"]


def _snapshot_session() -> Session:
    engine = read_engine()
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    return Session(engine, expire_on_commit=False)


def _check_ledger(session: Session, diffs: list[Difference]) -> tuple[dict[str, Decimal], int]:
    running: dict[str, Decimal] = defaultdict(Decimal)
    broken: set[str] = set()
    count = 0
    rows = session.exec(
        select(LedgerEntry.id, LedgerEntry.username, LedgerEntry.amount, LedgerEntry.balance_after).order_by(
            col(LedgerEntry.id)
        )
    )
    for entry_id, username, amount, balance_after in rows:
        count += 1
        running[username] += amount
        if balance_after != running[username] and username not in broken:
            broken.add(username)
            diffs.append(
                Difference(
                    username, None, "balance_after", balance_after, running[username], f"ledger entry {entry_id}"
                )
            )
    return running, count


def _replay_fills(session: Session) -> tuple[dict[tuple[str, str], HoldingState], int]:
    states: dict[tuple[str, str], HoldingState] = {}
    count = 0
    rows = session.exec(
        select(
            AssetTransaction.username,
            AssetTransaction.asset_id,
            AssetTransaction.transaction_type,
            AssetTransaction.quantity,
            AssetTransaction.total_amount,
            AssetTransaction.fee,
        ).order_by(col(AssetTransaction.id))
    )
    for username, asset_id, side, quantity, gross, fee in rows:
        count += 1
        key = (username, asset_id)
        states[key] = apply_fill(states.get(key, HoldingState()), side, quantity, gross, fee)
    return states, count


def _pending_holds(session: Session) -> tuple[dict[str, Decimal], dict[tuple[str, str], Decimal], int]:
    held_cash: dict[str, Decimal] = defaultdict(Decimal)
    held_quantity: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    count = 0
    rows = session.exec(
        select(Order.username, Order.asset_id, Order.order_type, Order.quantity, Order.held_amount).where(
            Order.status == OrderStatus.PENDING
        )
    )
    for username, asset_id, order_type, quantity, held_amount in rows:
        count += 1
        if order_type == OrderType.LIMIT_BUY:
            held_cash[username] += held_amount
        elif order_type == OrderType.LIMIT_SELL:
            held_quantity[(username, asset_id)] += quantity
    return held_cash, held_quantity, count


def _compare(
    diffs: list[Difference], username: str, asset_id: str | None, figure: str, stored: Decimal, rebuilt: Decimal
) -> None:
    if stored != rebuilt:
        diffs.append(Difference(username, asset_id, figure, stored, rebuilt))


def verify_ledger() -> IntegrityReport:
    """Rebuild every account's cash and held cash and every holding from the ledger, the fills and
    the open orders, and list each stored figure that differs (an empty list: all consistent)."""
    diffs: list[Difference] = []
    with _snapshot_session() as session:
        ledger, entries = _check_ledger(session, diffs)
        replayed, fills = _replay_fills(session)
        held_cash, held_quantity, pending = _pending_holds(session)
        accounts = session.exec(select(Account).order_by(col(Account.username))).all()
        holdings = session.exec(select(Holding).order_by(col(Holding.username), col(Holding.asset_id))).all()
    known = set()
    for account in accounts:
        known.add(account.username)
        _compare(diffs, account.username, None, "cash", account.cash, ledger.get(account.username, ZERO))
        _compare(diffs, account.username, None, "held_cash", account.held, held_cash.get(account.username, ZERO))
    for username in sorted(set(ledger) - known):
        diffs.append(Difference(username, None, "cash", None, ledger[username], "ledger entries without an account"))
    seen = set()
    for holding in holdings:
        key = (holding.username, holding.asset_id)
        seen.add(key)
        state = replayed.get(key, HoldingState())
        for figure, stored, rebuilt in (
            ("quantity", holding.quantity, state.quantity),
            ("held_quantity", holding.held_quantity, held_quantity.get(key, ZERO)),
            ("average_cost", holding.average_cost, state.average_cost),
            ("realized_pnl", holding.realized_pnl, state.realized_pnl),
        ):
            _compare(diffs, holding.username, holding.asset_id, figure, stored, rebuilt)
    for key in sorted(set(replayed) | set(held_quantity)):
        if key in seen:
            continue
        state = replayed.get(key, HoldingState())
        if state != HoldingState() or held_quantity.get(key, ZERO):
            diffs.append(Difference(key[0], key[1], "quantity", None, state.quantity, "fills without a holding"))
    diffs.sort(key=lambda d: (d.username, d.asset_id or "", d.figure))
    return IntegrityReport(
        checked_at=utcnow(),
        accounts=len(accounts),
        holdings=len(holdings),
        ledger_entries=entries,
        fills=fills,
        pending_orders=pending,
        differences=diffs,
    )
