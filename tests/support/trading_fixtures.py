"""Helpers for the trading tests: assets with prices, funded users, and the full invariant check.

The market data feed is another component; these tests write `Asset` rows directly, the way a
price refresh would leave them.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from sqlmodel import select

from cnop_app.db import read_session, write_session
from cnop_app.models import Account, Asset, AssetTransaction, Holding, LedgerEntry, Order, User, utcnow
from cnop_app.services.accounts import lock_account, post_entry

CENT_EXPONENT = -2


def add_asset(asset_id: str, price: str | Decimal | None, *, active: bool = True, name: str | None = None) -> None:
    with write_session() as session:
        session.add(
            Asset(
                id=asset_id,
                name=name or asset_id.title(),
                is_active=active,
                price_usd=None if price is None else Decimal(price),
                market_cap_rank=1,
                source="simulated",
                last_updated=utcnow(),
            )
        )


def set_price(asset_id: str, price: str | Decimal | None) -> None:
    with write_session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        asset.price_usd = None if price is None else Decimal(price)
        asset.last_updated = utcnow()
        session.add(asset)


def set_active(asset_id: str, active: bool) -> None:
    with write_session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        asset.is_active = active
        session.add(asset)


def make_user(username: str, cash: str | Decimal = "0") -> str:
    """A user with an account, created directly (no password hashing: fast), funded by a deposit entry."""
    with write_session() as session:
        session.add(
            User(
                username=username,
                email=f"{username}@example.com",
                password_hash="x",
                first_name="Test",
                last_name="User",
            )
        )
        session.add(Account(username=username))
    if Decimal(cash) > 0:
        fund(username, cash)
    return username


def fund(username: str, amount: str | Decimal) -> None:
    """Credit cash through the ledger (bypasses the daily deposit limit, which is not under test here)."""
    with write_session() as session:
        account = lock_account(session, username)
        post_entry(session, account, "deposit", Decimal(amount), description="test funding")


def account_of(username: str) -> Account:
    with read_session() as session:
        account = session.get(Account, username)
    assert account is not None
    return account


def holding_of(username: str, asset_id: str) -> Holding | None:
    with read_session() as session:
        return session.get(Holding, (username, asset_id))


def _is_cents(value: Decimal) -> bool:
    return isinstance(value, Decimal) and value == value.quantize(Decimal("0.01"))


def check_invariants(usernames: list[str] | None = None) -> None:
    """Every invariant of the trading engine, from the stored rows. Raises AssertionError naming the break."""
    with read_session() as session:
        accounts = session.exec(select(Account)).all()
        entries = session.exec(select(LedgerEntry).order_by(LedgerEntry.id)).all()  # type: ignore[arg-type]
        orders = session.exec(select(Order)).all()
        holdings = session.exec(select(Holding)).all()
        fills = session.exec(select(AssetTransaction)).all()
    wanted = set(usernames) if usernames is not None else {a.username for a in accounts}

    running: dict[str, Decimal] = defaultdict(Decimal)
    by_reference: dict[str, list[LedgerEntry]] = defaultdict(list)
    for entry in entries:
        assert isinstance(entry.amount, Decimal), "ledger amount is not a Decimal"
        assert _is_cents(entry.amount), f"ledger amount {entry.amount} is not whole cents"
        running[entry.username] += entry.amount
        # balance_after chains: a lost update would show as a gap here.
        assert entry.balance_after == running[entry.username], (
            f"{entry.username} entry {entry.id}: balance_after {entry.balance_after} != {running[entry.username]}"
        )
        if entry.reference:
            by_reference[entry.reference].append(entry)

    held_by_user: dict[str, Decimal] = defaultdict(Decimal)
    held_qty: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    fills_by_order: dict[str, list[AssetTransaction]] = defaultdict(list)
    for fill in fills:
        fills_by_order[fill.order_id].append(fill)
    for order in orders:
        assert order.quantity >= Decimal("0.001"), f"order {order.order_id} quantity {order.quantity}"
        assert _is_cents(order.total_amount) and _is_cents(order.fee), f"order {order.order_id} money not in cents"
        order_fills = fills_by_order.get(order.order_id, [])
        order_entries = by_reference.get(order.order_id, [])
        if order.status == "completed":
            assert len(order_fills) == 1, f"completed order {order.order_id} has {len(order_fills)} fills"
            fill = order_fills[0]
            assert fill.quantity == order.quantity and fill.price == order.executed_price
            assert fill.total_amount == order.total_amount and fill.fee == order.fee
            moved = sum((e.amount for e in order_entries), Decimal(0))
            if order.order_type.endswith("_buy"):
                assert moved == -(order.total_amount + order.fee), f"buy {order.order_id} entries {moved}"
                assert fill.transaction_type == "BUY"
            else:
                assert moved == order.total_amount - order.fee, f"sell {order.order_id} entries {moved}"
                assert fill.transaction_type == "SELL"
            assert order.held_amount == 0
        else:
            assert not order_fills, f"{order.status} order {order.order_id} has fills"
            assert not order_entries, f"{order.status} order {order.order_id} moved cash"
        if order.status == "pending":
            assert order.order_type.startswith("limit_"), "a market order was left pending"
            if order.order_type == "limit_buy":
                held_by_user[order.username] += order.held_amount
            else:
                held_qty[(order.username, order.asset_id)] += order.quantity
        elif order.order_type == "limit_buy":
            assert order.held_amount == 0, f"{order.status} order {order.order_id} still holds cash"

    for account in accounts:
        if account.username not in wanted:
            continue
        assert account.cash == running[account.username], (
            f"{account.username}: cash {account.cash} != ledger {running[account.username]}"
        )
        assert account.cash >= account.held >= 0, f"{account.username}: cash {account.cash} held {account.held}"
        assert account.held == held_by_user[account.username], (
            f"{account.username}: held {account.held} != pending buys {held_by_user[account.username]}"
        )
        assert _is_cents(account.cash) and _is_cents(account.held)

    bought: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for fill in fills:
        sign = 1 if fill.transaction_type == "BUY" else -1
        bought[(fill.username, fill.asset_id)] += sign * fill.quantity
    seen = set()
    for holding in holdings:
        key = (holding.username, holding.asset_id)
        seen.add(key)
        if holding.username not in wanted:
            continue
        assert holding.quantity >= holding.held_quantity >= 0, (
            f"{key}: qty {holding.quantity} held {holding.held_quantity}"
        )
        assert holding.quantity == bought[key], f"{key}: quantity {holding.quantity} != buys - sells {bought[key]}"
        assert holding.held_quantity == held_qty[key], f"{key}: held {holding.held_quantity} != {held_qty[key]}"
        assert holding.average_cost >= 0
        if holding.quantity == 0:
            assert holding.average_cost == 0
    for key, quantity in bought.items():
        assert key in seen or quantity == 0, f"{key}: fills without a holding"
