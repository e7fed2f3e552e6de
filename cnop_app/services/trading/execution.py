"""The steps every order runs inside its locked transaction: fill, release and the holding row.

A fill is planned on plain values (`plan_fill`: the cash, the holding and the order before, the price;
no database) and written with a few SQLAlchemy Core statements (`write_fill`). Market orders, the
limit-order matcher and the account reset all fill through these two functions; the ORM is not on
this path because building, flushing and tracking ~6 ORM objects cost several times the SQL itself,
inside the writer lock. The caller holds the account lock; the arithmetic is `cnop_app.domain.trading`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, select, union_all, update
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import replacement_traverse
from sqlmodel import Session

from cnop_app.config import get_settings
from cnop_app.domain import trading as rules
from cnop_app.domain.cash import require_funds
from cnop_app.domain.enums import FillSide, LedgerType, OrderStatus, OrderType
from cnop_app.domain.errors import NotFound
from cnop_app.domain.money import decimal_str
from cnop_app.hot_query import HotQuery, HotWrite
from cnop_app.models import Account, Asset, AssetTransaction, Holding, LedgerEntry, Order
from cnop_app.services import outbox
from cnop_app.services.accounts import ledger_row

ZERO = Decimal(0)
ORDER_COLUMNS = tuple(Order.model_fields)
_accounts = Account.__table__  # type: ignore[attr-defined]
_holdings = Holding.__table__  # type: ignore[attr-defined]
_orders = Order.__table__  # type: ignore[attr-defined]

# Built once and compiled once per dialect; the order path's own reads and writes (`lock_cash`,
# `read_listing_and_position`, `write_fill`) run them on the driver (`hot_query`).
_SELECT_CASH = (
    select(_accounts.c.cash, _accounts.c.held, _accounts.c.version)
    .where(_accounts.c.username == bindparam("username"))
    .with_for_update()
)
_UPDATE_CASH = (
    update(_accounts)
    .where(_accounts.c.username == bindparam("b_username"))
    .values(cash=bindparam("cash"), held=bindparam("held"), version=bindparam("version"), updated_at=bindparam("at"))
)
_SELECT_HOLDING = select(
    _holdings.c.quantity,
    _holdings.c.held_quantity,
    _holdings.c.average_cost,
    _holdings.c.realized_pnl,
    _holdings.c.version,
    _holdings.c.created_at,
).where(_holdings.c.username == bindparam("username"), _holdings.c.asset_id == bindparam("asset_id"))
_assets = Asset.__table__  # type: ignore[attr-defined]
_SELECT_LISTING_AND_HOLDING = (
    select(_assets.c.is_active, _assets.c.price_usd, *_SELECT_HOLDING.selected_columns)
    .select_from(
        _assets.outerjoin(
            _holdings,
            and_(_holdings.c.asset_id == _assets.c.id, _holdings.c.username == bindparam("username")),
        )
    )
    .where(_assets.c.id == bindparam("asset_id"))
)
_HOLDING_FIGURES = ("quantity", "held_quantity", "average_cost", "realized_pnl", "version", "updated_at")
_UPDATE_HOLDING = (
    update(_holdings)
    .where(_holdings.c.username == bindparam("b_username"), _holdings.c.asset_id == bindparam("b_asset_id"))
    .values({name: bindparam(name) for name in _HOLDING_FIGURES})
)
_INSERT_HOLDING = insert(_holdings)
_INSERT_LEDGER = insert(LedgerEntry.__table__)  # type: ignore[attr-defined]
_INSERT_ORDER = insert(_orders)
_ORDER_FILL_COLUMNS = (
    "status",
    "executed_price",
    "total_amount",
    "fee",
    "held_amount",
    "completed_at",
    "updated_at",
)
_UPDATE_ORDER = (
    update(_orders)
    .where(_orders.c.order_id == bindparam("b_order_id"))
    .values({name: bindparam(name) for name in _ORDER_FILL_COLUMNS})
)
_INSERT_FILL = insert(AssetTransaction.__table__)  # type: ignore[attr-defined]
_HOT_SELECT_CASH = HotQuery(_SELECT_CASH)
_HOT_LISTING_AND_HOLDING = HotQuery(_SELECT_LISTING_AND_HOLDING)
_HOT_UPDATE_CASH = HotWrite(_UPDATE_CASH)
_HOT_INSERT_LEDGER = HotWrite(_INSERT_LEDGER)
_HOT_UPDATE_HOLDING = HotWrite(_UPDATE_HOLDING)
_HOT_INSERT_HOLDING = HotWrite(_INSERT_HOLDING)
_HOT_INSERT_ORDER = HotWrite(_INSERT_ORDER)
_HOT_UPDATE_ORDER = HotWrite(_UPDATE_ORDER)
_HOT_INSERT_FILL = HotWrite(_INSERT_FILL)


def fee_bps() -> Decimal:
    return get_settings().fee_bps


def quote_fill(is_buy: bool, quantity: Decimal, price: Decimal) -> rules.FillQuote:
    return rules.quote(is_buy, quantity, price, fee_bps())


@dataclass(frozen=True, slots=True)
class CashState:
    """A locked account's figures."""

    username: str
    cash: Decimal
    held: Decimal
    version: int


@dataclass(frozen=True, slots=True)
class Position:
    """A holding's figures; `exists` False for a first buy (the row is inserted)."""

    username: str
    asset_id: str
    quantity: Decimal = ZERO
    held_quantity: Decimal = ZERO
    average_cost: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    version: int = 0
    created_at: datetime | None = None
    exists: bool = False

    def row(self, now: datetime) -> dict[str, Any]:
        return {
            "username": self.username,
            "asset_id": self.asset_id,
            "quantity": self.quantity,
            "held_quantity": self.held_quantity,
            "average_cost": self.average_cost,
            "realized_pnl": self.realized_pnl,
            "version": self.version,
            "created_at": self.created_at or now,
            "updated_at": now,
        }


@dataclass(frozen=True, slots=True)
class FillPlan:
    """Everything one fill writes: the account, ledger rows, the holding, the order and the fill row."""

    cash: CashState
    position: Position
    order: dict[str, Any]
    entries: list[dict[str, Any]] = field(default_factory=list)
    fill: dict[str, Any] = field(default_factory=dict)


def lock_cash(conn: Connection, username: str) -> CashState:
    """The account's figures, its row locked for this transaction (FOR UPDATE; SQLite holds the write lock)."""
    row = _HOT_SELECT_CASH.first(conn, {"username": username})
    if row is None:
        raise NotFound("Account not found")
    return CashState(username, row.cash, row.held, row.version)


def read_position(conn: Connection, username: str, asset_id: str) -> Position:
    row = conn.execute(_SELECT_HOLDING, {"username": username, "asset_id": asset_id}).first()
    if row is None:
        return Position(username, asset_id)
    return Position(username, asset_id, *row, exists=True)


@dataclass(frozen=True, slots=True)
class Listing:
    """An asset as an order sees it: tradeable or not, and its stored price."""

    is_active: bool
    price: Decimal | None


def read_listing_and_position(conn: Connection, username: str, asset_id: str) -> tuple[Listing | None, Position]:
    """The asset's listing (None: no such asset) and the caller's holding of it, in ONE statement.

    Run after `lock_cash`: the account lock guards the holding, and this statement, started after the
    lock was granted, sees the holding as the last writer committed it (PostgreSQL READ COMMITTED
    takes a snapshot per statement; the lock and this read must not be one statement for that reason)."""
    row = _HOT_LISTING_AND_HOLDING.first(conn, {"username": username, "asset_id": asset_id})
    if row is None:
        return None, Position(username, asset_id)
    listing = Listing(row.is_active, row.price_usd)
    if row.version is None:  # no holding row: a first buy
        return listing, Position(username, asset_id)
    return listing, Position(username, asset_id, *row[2:], exists=True)


def require_free_quantity(holding: Holding | Position | None, quantity: Decimal, asset_id: str) -> None:
    owned = holding.quantity if holding else ZERO
    held = holding.held_quantity if holding else ZERO
    rules.require_quantity(owned, held, quantity, asset_id)


def emit_holding(session: Session, holding: Holding) -> None:
    outbox.emit(session, "holding", f"{holding.username}#{holding.asset_id}", holding)


def plan_fill(cash: CashState, position: Position, order: dict[str, Any], price: Decimal, now: datetime) -> FillPlan:
    """Execute `order` (its column values) at `price`: the new cash, holding, ledger and fill rows and the
    order's final values. Pure: raises a DomainError (insufficient funds or quantity) before any write."""
    kind = OrderType(order["order_type"])
    quantity: Decimal = order["quantity"]
    order_id: str = order["order_id"]
    quote = quote_fill(kind.is_buy, quantity, price)
    gross = quote.gross
    if kind.is_limit:
        # A limit order's fee was fixed at placement (a sale's still capped at its gross).
        fee = order["fee"] if kind.is_buy else rules.cap_sell_fee(order["fee"], gross)
    else:
        fee = quote.fee
    held, held_amount = cash.held, order.get("held_amount") or ZERO
    entries: list[dict[str, Any]] = []
    if kind.is_buy:
        if kind.is_limit:
            # The hold is exactly this cost; releasing it and paying happen in the same transaction.
            held -= held_amount
            held_amount = ZERO
        else:
            require_funds(cash.cash, cash.held, gross + fee, "quantity")
        what, entry_type, amount = "Buy", LedgerType.ORDER_PAYMENT, -gross
    else:
        if not kind.is_limit:
            require_free_quantity(position, quantity, order["asset_id"])
        what, entry_type, amount = "Sell", LedgerType.ORDER_SALE, gross
    description = f"{what} {decimal_str(quantity)} {order['asset_id']} @ {decimal_str(price)}"
    new_cash, entry = ledger_row(
        cash.username, cash.cash, entry_type, amount, reference=order_id, description=description, now=now
    )
    entries.append(entry)
    if fee > 0:
        new_cash, entry = ledger_row(
            cash.username, new_cash, LedgerType.FEE, -fee, reference=order_id, description="Trading fee", now=now
        )
        entries.append(entry)
    if kind.is_buy:
        position = replace(
            position,
            average_cost=rules.average_cost_after_buy(position.average_cost, position.quantity, quantity, gross + fee),
            quantity=position.quantity + quantity,
        )
        side = FillSide.BUY
    else:
        remaining = position.quantity - quantity
        position = replace(
            position,
            held_quantity=position.held_quantity - quantity if kind.is_limit else position.held_quantity,
            realized_pnl=position.realized_pnl + rules.realized_on_sell(position.average_cost, quantity, gross, fee),
            quantity=remaining,
            average_cost=ZERO if remaining == 0 else position.average_cost,
        )
        side = FillSide.SELL
    if position.quantity < 0 or position.held_quantity < 0 or position.held_quantity > position.quantity:
        raise RuntimeError(f"holding invariant broken for order {order_id}")  # never commit it
    position = replace(position, version=position.version + 1)
    version = cash.version + len(entries)  # one step per cash change, as post_entry counts
    filled = {
        **order,
        "status": OrderStatus.COMPLETED,
        "executed_price": price,
        "total_amount": gross,
        "fee": fee,
        "held_amount": held_amount,
        "completed_at": now,
        "updated_at": now,
    }
    fill_row = {
        "username": cash.username,
        "asset_id": order["asset_id"],
        "order_id": order_id,
        "transaction_type": side,
        "quantity": quantity,
        "price": price,
        "total_amount": gross,
        "fee": fee,
        "status": OrderStatus.COMPLETED,
        "created_at": now,
    }
    return FillPlan(CashState(cash.username, new_cash, held, version), position, filled, entries, fill_row)


def write_fill(session: Session, plan: FillPlan, now: datetime, *, new_order: bool) -> int:
    """Write a planned fill in the caller's transaction; returns the fill row's id.

    `new_order`: the order is inserted already completed (a market order); else its row is updated.
    The same five writes either way: on PostgreSQL as ONE statement (`_one_statement`; a round trip
    costs more than the SQL), elsewhere as five Core statements run on the driver (`HotWrite`)."""
    conn = session.connection()
    cash = plan.cash
    account = {"b_username": cash.username, "cash": cash.cash, "held": cash.held, "version": cash.version, "at": now}
    position = plan.position
    holding_row = position.row(now)
    holding = (
        {"b_username": position.username, "b_asset_id": position.asset_id}
        | {name: holding_row[name] for name in _HOLDING_FIGURES}
        if position.exists
        else holding_row
    )
    order = plan.order
    order_write = (
        order if new_order else {"b_order_id": order["order_id"], **{k: order[k] for k in _ORDER_FILL_COLUMNS}}
    )
    if conn.dialect.name == "postgresql":
        statement, params = _one_statement(
            account, plan.entries, holding, position.exists, order_write, new_order, plan.fill
        )
        returned = statement.execute(conn, params).returned
        if returned is None:
            raise RuntimeError("the fill's statement returned no id")
        fill_id = int(returned.id)
    else:
        _HOT_UPDATE_CASH.execute(conn, account)
        _HOT_INSERT_LEDGER.executemany(conn, plan.entries)
        (_HOT_UPDATE_HOLDING if position.exists else _HOT_INSERT_HOLDING).execute(conn, holding)
        (_HOT_INSERT_ORDER if new_order else _HOT_UPDATE_ORDER).execute(conn, order_write)
        fill_id = _HOT_INSERT_FILL.execute(conn, plan.fill).lastrowid
        if fill_id is None:
            raise RuntimeError("the driver gave no id for the fill row")
    if outbox.enabled():
        balance = {"username": cash.username, "cash": cash.cash, "held": cash.held, "version": cash.version}
        outbox.append(
            session,
            [
                *(("ledger", e["transaction_id"], LedgerEntry, e) for e in plan.entries),
                ("balance", cash.username, Account, {**balance, "updated_at": now}),
                ("order", order["order_id"], Order, order),
                ("holding", f"{position.username}#{position.asset_id}", Holding, holding_row),
                ("asset_transaction", str(fill_id), AssetTransaction, {**plan.fill, "id": fill_id}),
            ],
        )
    return fill_id


def _prefixed(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}{name}": value for name, value in values.items()}


def _one_statement(
    account: dict[str, Any],
    entries: list[dict[str, Any]],
    holding: dict[str, Any],
    holding_exists: bool,
    order: dict[str, Any],
    new_order: bool,
    fill: dict[str, Any],
) -> tuple[HotWrite, dict[str, Any]]:
    """The fill's five writes as one PostgreSQL statement (run on the driver) and its parameters: the account, ledger,
    holding and order writes as data-modifying CTEs of the fill's INSERT ... RETURNING id. PostgreSQL
    runs each CTE exactly once, all or nothing, in no set order between them. The ledger entries,
    whose ids must follow their order (each balance_after follows the one before), are ONE insert
    of a UNION ALL, which numbers its rows in order (and which SQLAlchemy caches, unlike a
    multi-row VALUES)."""
    shape = (len(entries), tuple(entries[0]), holding_exists, tuple(holding), new_order, tuple(order), tuple(fill))
    statement = _ONE_STATEMENT.get(shape)
    if statement is None:
        statement = _ONE_STATEMENT[shape] = HotWrite(_build_one_statement(shape))
    params = _prefixed("a_", account) | _prefixed("h_", holding) | _prefixed("o_", order) | _prefixed("f_", fill)
    for index, entry in enumerate(entries):
        params |= _prefixed(f"l{index}_", entry)
    return statement, params


_ONE_STATEMENT: dict[tuple[Any, ...], HotWrite] = {}  # by shape: built and compiled once each (a handful)


def _build_one_statement(shape: tuple[Any, ...]) -> Any:
    """The statements above, each with its parameters renamed into its own namespace, as CTEs."""
    entry_count, entry_keys, holding_exists, holding_keys, new_order, order_keys, fill_keys = shape

    def bound(prefix: str, table: Any, keys: tuple[str, ...]) -> dict[str, Any]:
        return {key: bindparam(f"{prefix}{key}", type_=table.c[key].type) for key in keys}

    ledger = _INSERT_LEDGER.table
    rows = [select(*[bound(f"l{i}_", ledger, entry_keys)[k].label(k) for k in entry_keys]) for i in range(entry_count)]
    parts = [
        (_renamed(_UPDATE_CASH, "a_"), "w_account"),
        (_INSERT_LEDGER.from_select(list(entry_keys), union_all(*rows) if len(rows) > 1 else rows[0]), "w_ledger"),
        (
            _renamed(_UPDATE_HOLDING, "h_")
            if holding_exists
            else _INSERT_HOLDING.values(bound("h_", _holdings, holding_keys)),
            "w_holding",
        ),
        (
            _INSERT_ORDER.values(bound("o_", _orders, order_keys)) if new_order else _renamed(_UPDATE_ORDER, "o_"),
            "w_order",
        ),
    ]
    fills = _INSERT_FILL.table
    fill = _INSERT_FILL.values(bound("f_", fills, fill_keys)).returning(fills.c.id)
    return fill.add_cte(*(part.cte(name) for part, name in parts))


def _renamed(statement: Any, prefix: str) -> Any:
    """`statement` with every bound parameter `name` renamed `prefix + name` (its type kept)."""

    def rename(element: Any, **_kw: Any) -> Any:
        if isinstance(element, BindParameter):
            return bindparam(prefix + element.key, type_=element.type)
        return None

    return replacement_traverse(statement, {}, rename)


def order_values(order: Order) -> dict[str, Any]:
    return {name: getattr(order, name) for name in ORDER_COLUMNS}


def fill(session: Session, account: Account, order: Order, price: Decimal, now: datetime) -> None:
    """`plan_fill` + `write_fill` for callers that hold ORM objects (the matcher, the account reset).

    Their pending ORM changes are flushed first; afterwards the session's objects are expired (they
    reload what was written) and `order` carries its final values."""
    session.flush()
    conn = session.connection()
    cash = CashState(account.username, account.cash, account.held, account.version)
    plan = plan_fill(cash, read_position(conn, order.username, order.asset_id), order_values(order), price, now)
    persistent = order in session
    write_fill(session, plan, now, new_order=not persistent)
    session.expire_all()
    if not persistent:
        for name in _ORDER_FILL_COLUMNS:
            setattr(order, name, plan.order[name])


def release(session: Session, account: Account, order: Order, status: OrderStatus, now: datetime) -> None:
    """End a pending order without a fill and give back what it held."""
    if order.order_type == OrderType.LIMIT_BUY:
        account.held -= order.held_amount
        order.held_amount = Decimal(0)
        account.version += 1
        account.updated_at = now
        session.add(account)
        outbox.emit(session, "balance", account.username, account)
    elif order.order_type == OrderType.LIMIT_SELL:
        holding = session.get(Holding, (order.username, order.asset_id))
        if holding is not None:
            holding.held_quantity -= order.quantity
            holding.version += 1
            holding.updated_at = now
            session.add(holding)
            emit_holding(session, holding)
    order.status = status
    order.updated_at = now
    order.completed_at = now
    session.add(order)
    outbox.emit(session, "order", order.order_id, order)
