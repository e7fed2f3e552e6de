"""The raw-`sqlite3` floor: the statements one market order issues, with the stdlib module, in one process.

The statements are the ones the order path sends (read with a SQLAlchemy `before_cursor_execute` hook on
one market buy and one sell, see docs/performance.md): in one BEGIN IMMEDIATE transaction, read the
account, the asset's price and the holding; update the account; insert the asset transaction; insert
or update the holding; insert the ledger entry and the order; commit. Same schema (the app's migrations),
same pragmas as the app's engine (WAL, synchronous=NORMAL, foreign_keys=ON), the same time-ordered ids
(`domain.ids`), one transaction per order.
Authentication (one session-row read per request, outside the write transaction) is not part of it.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from cnop_app.domain.ids import new_id
from cnop_app.manage import migrate

PRICE = Decimal("3412.55")
QUANTITY = Decimal("0.001")


def _now() -> str:
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")


def floor_rate(orders: int) -> float:
    """Orders per second, alternating buys and sells of one user, one transaction each."""
    workdir = Path(tempfile.mkdtemp(prefix="cnop-floor-"))
    try:
        path = workdir / "floor.db"
        migrate(f"sqlite:///{path}")
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=NORMAL")
        _seed(db)
        started = time.perf_counter()
        for i in range(orders):
            _order(db, buy=i % 2 == 0)
        elapsed = time.perf_counter() - started
        db.close()
        return orders / elapsed
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _seed(db: sqlite3.Connection) -> None:
    now = _now()
    db.execute(
        "INSERT INTO users (username, email, password_hash, first_name, last_name, marketing_emails_consent, role,"
        " is_active, created_at, updated_at)"
        " VALUES ('floor', 'floor@example.com', 'x', 'Floor', 'User', 0, 'customer', 1, ?, ?)",
        (now, now),
    )
    db.execute(
        "INSERT INTO accounts (username, cash, held, version, updated_at) VALUES ('floor', '1000000', '0', 0, ?)",
        (now,),
    )
    db.execute(
        "INSERT INTO assets (id, name, description, category, is_active, price_usd, market_cap_rank, sparkline_7d,"
        " source, updated_at) VALUES ('ETH', 'Ethereum', '', 'crypto', 1, ?, 2, '[]', 'snapshot', ?)",
        (str(PRICE), now),
    )


def _order(db: sqlite3.Connection, buy: bool) -> None:
    now = _now()
    order_id = new_id()
    db.execute("BEGIN IMMEDIATE")
    _, cash, _held, version, _ = db.execute(
        "SELECT accounts.username, accounts.cash, accounts.held, accounts.version, accounts.updated_at"
        " FROM accounts WHERE accounts.username = ?",
        ("floor",),
    ).fetchone()
    _active, price = db.execute(
        "SELECT assets.is_active, assets.price_usd FROM assets WHERE assets.id = ?", ("ETH",)
    ).fetchone()
    holding = db.execute(
        "SELECT holdings.username, holdings.asset_id, holdings.quantity, holdings.held_quantity,"
        " holdings.average_cost, holdings.realized_pnl, holdings.version, holdings.created_at, holdings.updated_at"
        " FROM holdings WHERE holdings.username = ? AND holdings.asset_id = ?",
        ("floor", "ETH"),
    ).fetchone()
    gross = (Decimal(str(price)) * QUANTITY).quantize(Decimal("0.01"))
    new_cash = Decimal(str(cash)) - gross if buy else Decimal(str(cash)) + gross
    db.execute(
        "UPDATE accounts SET cash=?, version=?, updated_at=? WHERE accounts.username = ?",
        (str(new_cash), version + 1, now, "floor"),
    )
    db.execute(
        "INSERT INTO asset_transactions (username, asset_id, order_id, transaction_type, quantity, price,"
        " total_amount, fee, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("floor", "ETH", order_id, "BUY" if buy else "SELL", str(QUANTITY), str(price), str(gross), "0.00",
         "completed", now),
    )  # fmt: skip
    if holding is None:
        db.execute(
            "INSERT INTO holdings (username, asset_id, quantity, held_quantity, average_cost, realized_pnl, version,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ("floor", "ETH", str(QUANTITY), "0", str(price), "0", 1, now, now),
        )
    else:
        quantity = Decimal(str(holding[2])) + (QUANTITY if buy else -QUANTITY)
        db.execute(
            "UPDATE holdings SET quantity=?, realized_pnl=?, version=?, updated_at=?"
            " WHERE holdings.username = ? AND holdings.asset_id = ?",
            (str(quantity), str(holding[5]), holding[6] + 1, now, "floor", "ETH"),
        )
    db.execute(
        "INSERT INTO ledger_entries (transaction_id, username, entry_type, amount, balance_after, reference,"
        " description, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (new_id(), "floor", "order_payment" if buy else "order_sale", str(-gross if buy else gross),
         str(new_cash), order_id, f"{'Buy' if buy else 'Sell'} {QUANTITY} ETH @ {price}", now),
    )  # fmt: skip
    db.execute(
        "INSERT INTO orders (order_id, client_order_id, username, asset_id, order_type, status, quantity, limit_price,"
        " executed_price, total_amount, fee, held_amount, expires_at, reject_reason, created_at, updated_at,"
        " completed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (order_id, None, "floor", "ETH", "market_buy" if buy else "market_sell", "completed", str(QUANTITY), None,
         str(price), str(gross), "0.00", "0", None, None, now, now, now),
    )  # fmt: skip
    db.execute("COMMIT")
