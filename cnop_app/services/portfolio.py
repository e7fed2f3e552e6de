"""Portfolio: holdings valued at the stored prices, P&L, allocation, totals and value over time.

Value over time: the snapshots recorded after each price refresh, and before them (or without them)
values rebuilt from the ledger, the fills and the stored price ticks (`reconstruct_history`).

Values are exact Decimals; money figures are rounded half-even to the cent when shown, percentages
to two decimals. A holding whose asset has no price is valued at its cost (no invented loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection, bindparam, delete, insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from cnop_app.db import read_session, write_session
from cnop_app.domain.cash import available
from cnop_app.domain.errors import NotFound
from cnop_app.domain.portfolio import percent, value_holding
from cnop_app.domain.ranges import DEFAULT_RANGE, parse_range
from cnop_app.domain.replay import HoldingState, apply_fill
from cnop_app.hot_query import HotQuery
from cnop_app.models import Account, Asset, AssetTransaction, Holding, LedgerEntry, PortfolioSnapshot, PriceTick, utcnow
from cnop_app.read_path import read_connection
from cnop_app.services import validation

KEEP_SNAPSHOTS = timedelta(days=31)
_snapshots = PortfolioSnapshot.__table__  # type: ignore[attr-defined]
MAX_POINTS = 500
RECONSTRUCT_STEPS = 168  # rebuilt points per stretch of history: hourly over 7 days
MIN_RECONSTRUCT_STEP = timedelta(minutes=1)


@dataclass(frozen=True)
class HoldingView:
    asset_id: str
    name: str
    image: str | None
    quantity: Decimal
    held_quantity: Decimal
    available_quantity: Decimal
    average_cost: Decimal
    cost_basis: Decimal
    current_price: Decimal | None
    market_value: Decimal
    unrealized_pnl: Decimal
    unrealized_pnl_percent: Decimal | None
    realized_pnl: Decimal
    percentage: Decimal | None  # share of total equity (cash + holdings), as the reference system had it
    allocation_percent: Decimal | None  # share of the holdings' total market value
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Totals:
    cash: Decimal
    held_cash: Decimal
    available_cash: Decimal
    holdings_value: Decimal
    cost_basis: Decimal
    total_equity: Decimal
    unrealized_pnl: Decimal
    unrealized_pnl_percent: Decimal | None
    realized_pnl: Decimal


@dataclass(frozen=True)
class PortfolioView:
    username: str
    holdings: list[HoldingView]
    totals: Totals


@dataclass(frozen=True)
class HistoryPoint:
    at: datetime
    cash: Decimal
    holdings_value: Decimal
    total_value: Decimal


_accounts = Account.__table__  # type: ignore[attr-defined]
_holdings = Holding.__table__  # type: ignore[attr-defined]
_assets = Asset.__table__  # type: ignore[attr-defined]
# Core statements built once, reading only the columns a portfolio shows (an asset row also holds its
# sparkline and supplies): this is every portfolio request and every live push.
_ACCOUNT = HotQuery(sa_select(_accounts.c.cash, _accounts.c.held).where(_accounts.c.username == bindparam("username")))
# The holdings with their assets' name, logo and price in one statement (a holding's asset may have
# been removed from the catalogue since: outer join, `asset_found` is then NULL).
_HOLDINGS = HotQuery(
    sa_select(
        _holdings,
        _assets.c.id.label("asset_found"),
        _assets.c.name.label("asset_name"),
        _assets.c.image.label("asset_image"),
        _assets.c.price_usd.label("asset_price"),
    )
    .select_from(_holdings.outerjoin(_assets, _assets.c.id == _holdings.c.asset_id))
    .where(_holdings.c.username == bindparam("username"))
    .order_by(_holdings.c.asset_id)
)


def _build(conn: Connection, username: str) -> PortfolioView:
    account = _ACCOUNT.first(conn, {"username": username})
    if account is None:
        raise NotFound("Account not found")
    holdings = _HOLDINGS.rows(conn, {"username": username})
    rows = []
    holdings_value = Decimal(0)
    total_cost = Decimal(0)
    realized = Decimal(0)
    for holding in holdings:
        realized += holding.realized_pnl
        if holding.quantity == 0:
            continue
        listed = holding.asset_found is not None
        valued = value_holding(holding.quantity, holding.average_cost, holding.asset_price if listed else None)
        rows.append((holding, listed, valued.cost, valued.value, valued.price))
        holdings_value += valued.value
        total_cost += valued.cost
    equity = account.cash + holdings_value
    views = []
    for holding, listed, cost, value, price in rows:
        unrealized = value - cost
        views.append(
            HoldingView(
                asset_id=holding.asset_id,
                name=holding.asset_name if listed else holding.asset_id,
                image=holding.asset_image if listed else None,
                quantity=holding.quantity,
                held_quantity=holding.held_quantity,
                available_quantity=holding.quantity - holding.held_quantity,
                average_cost=holding.average_cost,
                cost_basis=cost,
                current_price=price,
                market_value=value,
                unrealized_pnl=unrealized,
                unrealized_pnl_percent=percent(unrealized, cost),
                realized_pnl=holding.realized_pnl,
                percentage=percent(value, equity),
                allocation_percent=percent(value, holdings_value),
                created_at=holding.created_at,
                updated_at=holding.updated_at,
            )
        )
    views.sort(key=lambda v: (-v.market_value, v.asset_id))
    unrealized_total = holdings_value - total_cost
    totals = Totals(
        cash=account.cash,
        held_cash=account.held,
        available_cash=available(account.cash, account.held),
        holdings_value=holdings_value,
        cost_basis=total_cost,
        total_equity=equity,
        unrealized_pnl=unrealized_total,
        unrealized_pnl_percent=percent(unrealized_total, total_cost),
        realized_pnl=realized,
    )
    return PortfolioView(username=username, holdings=views, totals=totals)


def get_portfolio(username: str) -> PortfolioView:
    """Every holding with quantity > 0, valued now, largest first, and the account totals."""
    with read_connection() as conn:
        return _build(conn, username)


def get_holding(username: str, asset_id: str) -> HoldingView:
    """One holding (quantity > 0). None: NotFound."""
    asset_id = validation.asset_id(asset_id)
    portfolio = get_portfolio(username)
    for view in portfolio.holdings:
        if view.asset_id == asset_id:
            return view
    raise NotFound(f"No holding of {asset_id}")


# Every account's cash with each of its holdings and that asset's price (NULLs: no holding;
# a price of NULL, the asset unknown or unpriced: valued at cost, as `value_holding` does).
_SNAPSHOT_INPUTS = (
    sa_select(
        _accounts.c.username, _accounts.c.cash, _holdings.c.quantity, _holdings.c.average_cost, _assets.c.price_usd
    )
    .select_from(_accounts)
    .outerjoin(_holdings, _holdings.c.username == _accounts.c.username)
    .outerjoin(_assets, _assets.c.id == _holdings.c.asset_id)
)


def record_snapshots(now: datetime | None = None) -> int:
    """One PortfolioSnapshot per account at the current prices (call after each price refresh).
    Snapshots older than 31 days are pruned. Returns the number written."""
    now = now or utcnow()
    with write_session() as session:
        cash_by_user: dict[str, Decimal] = {}
        value_by_user: dict[str, Decimal] = {}
        # Plain rows of one statement (cash, and each holding with its price): one consistent
        # read on PostgreSQL too, and no ORM object per account and holding, which cost ~80 ms at
        # 1,000 accounts, before every live push.
        for username, cash, quantity, average_cost, price in session.execute(_SNAPSHOT_INPUTS):
            cash_by_user[username] = cash
            if quantity is not None and quantity != 0:  # zero: compared as Decimal, not as SQLite's text
                value = value_holding(quantity, average_cost, price).value
                value_by_user[username] = value_by_user.get(username, Decimal(0)) + value
        rows = []
        for username, cash in cash_by_user.items():
            holdings_value = value_by_user.get(username, Decimal(0))
            rows.append(
                {
                    "username": username,
                    "at": now,
                    "cash": cash,
                    "holdings_value": holdings_value,
                    "total_value": cash + holdings_value,
                }
            )
        # One statement for every account (an ORM object each took ~0.15 ms: 150 ms at 1,000 accounts).
        if rows:
            session.execute(insert(_snapshots), rows)
        # A range scan of ix_portfolio_snapshots_at: the table holds a row per account per refresh.
        session.execute(delete(_snapshots).where(_snapshots.c.at < now - KEEP_SNAPSHOTS))
    return len(rows)


def history(username: str, range_: str = DEFAULT_RANGE, now: datetime | None = None) -> list[HistoryPoint]:
    """Portfolio value points in the range (24h, 7d, 30d), oldest first, at most 500 (evenly thinned).

    The recorded snapshots, preceded by values rebuilt from the history (`reconstruct_history`) for
    the part of the range they do not cover: a new deployment, or offline prices that record none,
    still shows a real curve from the user's first deposit."""
    span = parse_range(range_)
    now = now or utcnow()
    start = now - span
    with read_session() as session:
        rows = session.exec(
            select(PortfolioSnapshot)
            .where(PortfolioSnapshot.username == username, PortfolioSnapshot.at >= start)
            .order_by(PortfolioSnapshot.at, PortfolioSnapshot.id)  # type: ignore[arg-type]
        ).all()
    points = [
        HistoryPoint(at=r.at, cash=r.cash, holdings_value=r.holdings_value, total_value=r.total_value) for r in rows
    ]
    first = points[0].at if points else None
    step = span / RECONSTRUCT_STEPS
    if first is None:
        points = reconstruct_history(username, start, now, now=now)
    elif first - start > step:
        # Only a stretch longer than one chart step before the first snapshot is worth rebuilding.
        points = reconstruct_history(username, start, first, now=now, longer_than=step) + points
    if len(points) > MAX_POINTS:
        picked = [points[i * len(points) // MAX_POINTS] for i in range(MAX_POINTS - 1)]
        points = [*picked, points[-1]]  # always end on the newest point
    return points


def _step_times(start: datetime, end: datetime, events: list[datetime]) -> list[datetime]:
    """Evenly spaced times from `start` up to `end` (excluded) plus each event time in between."""
    step = max((end - start) / RECONSTRUCT_STEPS, MIN_RECONSTRUCT_STEP)
    times = set()
    at = start
    while at < end:
        times.add(at)
        at += step
    times.update(e for e in events if start <= e < end)
    return sorted(times)


def _price_series(session: Session, asset_ids: list[str], start: datetime, end: datetime) -> dict[str, list]:
    """Per asset, (at, price) ticks from the last one before `start` up to `end`, oldest first."""
    series: dict[str, list] = {}
    for asset_id in asset_ids:
        before = session.exec(
            select(PriceTick.at, PriceTick.price)
            .where(PriceTick.asset_id == asset_id, col(PriceTick.at) < start)
            .order_by(col(PriceTick.at).desc())
            .limit(1)
        ).all()
        during = session.exec(
            select(PriceTick.at, PriceTick.price)
            .where(PriceTick.asset_id == asset_id, col(PriceTick.at) >= start, col(PriceTick.at) <= end)
            .order_by(col(PriceTick.at))
        ).all()
        series[asset_id] = [*before, *during]
    return series


def reconstruct_history(
    username: str,
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
    longer_than: timedelta = timedelta(0),
) -> list[HistoryPoint]:
    """Portfolio values from `start` (or the user's first ledger entry) up to `end` (excluded), rebuilt
    from the history: cash from the ledger (`balance_after`), positions from the fills
    (`domain.replay`), prices from the stored price ticks (a new asset's 7-day sparkline is stored as
    ticks). An asset with no tick yet at a time is valued at the user's last fill price of it, else at
    cost. When `end` is now, a last point at the current stored prices ends the curve, the same value
    the portfolio shows. About 168 evenly spaced points plus one at each ledger entry; nothing when
    the stretch from the first ledger entry to `end` is not longer than `longer_than`."""
    now = now or utcnow()
    with read_session() as session:
        entries = session.exec(
            select(LedgerEntry.created_at, LedgerEntry.balance_after)
            .where(LedgerEntry.username == username, col(LedgerEntry.created_at) <= end)
            .order_by(col(LedgerEntry.created_at), col(LedgerEntry.id))
        ).all()
        if not entries:
            return []
        start = max(start, entries[0][0])
        if end - start <= longer_than or start >= end:
            return []
        fills = session.exec(
            select(
                AssetTransaction.created_at,
                AssetTransaction.asset_id,
                AssetTransaction.transaction_type,
                AssetTransaction.quantity,
                AssetTransaction.price,
                AssetTransaction.total_amount,
                AssetTransaction.fee,
            )
            .where(AssetTransaction.username == username, col(AssetTransaction.created_at) <= end)
            .order_by(col(AssetTransaction.created_at), col(AssetTransaction.id))
        ).all()
        asset_ids = sorted({f[1] for f in fills})
        series = _price_series(session, asset_ids, start, end)
        current = (
            {a.id: a.price_usd for a in session.exec(select(Asset).where(col(Asset.id).in_(asset_ids))).all()}
            if asset_ids
            else {}
        )
    times = _step_times(start, end, [at for at, _ in entries])
    at_now = end >= now
    if at_now:
        times.append(now)
    points = []
    cash = Decimal(0)
    states: dict[str, HoldingState] = {}
    last_fill_price: dict[str, Decimal] = {}
    tick_index = dict.fromkeys(asset_ids, 0)
    price_at: dict[str, Decimal | None] = dict.fromkeys(asset_ids)
    e = f = 0
    for moment in times:
        while e < len(entries) and entries[e][0] <= moment:
            cash = entries[e][1]
            e += 1
        while f < len(fills) and fills[f][0] <= moment:
            at, asset_id, side, quantity, price, gross, fee = fills[f]
            states[asset_id] = apply_fill(states.get(asset_id, HoldingState()), side, quantity, gross, fee)
            last_fill_price[asset_id] = price
            f += 1
        holdings_value = Decimal(0)
        for asset_id, state in states.items():
            if state.quantity == 0:
                continue
            ticks = series.get(asset_id, [])
            i = tick_index[asset_id]
            while i < len(ticks) and ticks[i][0] <= moment:
                price_at[asset_id] = ticks[i][1]
                i += 1
            tick_index[asset_id] = i
            price = current.get(asset_id) if at_now and moment == now else None
            price = price or price_at[asset_id] or last_fill_price.get(asset_id)
            holdings_value += value_holding(state.quantity, state.average_cost, price).value
        points.append(
            HistoryPoint(at=moment, cash=cash, holdings_value=holdings_value, total_value=cash + holdings_value)
        )
    return points
