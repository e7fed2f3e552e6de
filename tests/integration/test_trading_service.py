"""The trading and portfolio services against a real migrated SQLite file."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import col, select

from cnop_app.config import reset_settings
from cnop_app.db import read_session, write_engine
from cnop_app.domain.errors import BusinessRuleViolation, Conflict, NotFound, ValidationFailed
from cnop_app.models import AssetTransaction, LedgerEntry, Order, Outbox, PortfolioSnapshot, utcnow
from cnop_app.services import portfolio, trading
from tests.support.helpers import executed_on
from tests.support.trading_fixtures import (
    account_of,
    add_asset,
    check_invariants,
    fund,
    holding_of,
    make_user,
    set_active,
    set_price,
)

D = Decimal


@pytest.fixture
def env(any_db: str) -> str:
    add_asset("BTC", "100")
    add_asset("ETH", "10")
    return make_user("alice_01", "10000")


def buy(user: str, qty: str, asset: str = "BTC", **extra: object) -> trading.OrderView:
    return trading.place_order(user, {"order_type": "market_buy", "asset_id": asset, "quantity": qty, **extra})


def sell(user: str, qty: str, asset: str = "BTC", **extra: object) -> trading.OrderView:
    return trading.place_order(user, {"order_type": "market_sell", "asset_id": asset, "quantity": qty, **extra})


def limit(user: str, side: str, qty: str, price: str, asset: str = "BTC", **extra: object) -> trading.OrderView:
    data = {"order_type": f"limit_{side}", "asset_id": asset, "quantity": qty, "price": price, **extra}
    return trading.place_order(user, data)


def test_market_buy_moves_cash_holding_and_fill_together(env: str) -> None:
    order = buy(env, "1.5")
    assert order.status == "completed"
    assert order.executed_price == D(100) and order.total_amount == D("150.00") and order.fee == 0
    assert account_of(env).cash == D("9850.00")
    holding = holding_of(env, "BTC")
    assert holding is not None and holding.quantity == D("1.5") and holding.average_cost == D(100)
    with read_session() as session:
        entries = session.exec(select(LedgerEntry).where(LedgerEntry.reference == order.order_id)).all()
        fills = session.exec(select(AssetTransaction).where(AssetTransaction.order_id == order.order_id)).all()
    assert [(e.entry_type, e.amount) for e in entries] == [("order_payment", D("-150.00"))]
    assert len(fills) == 1 and fills[0].transaction_type == "BUY"
    check_invariants()


def test_orders_and_ledger_entries_get_ids_in_creation_order(env: str) -> None:
    # Time-ordered (version 7) ids: the indexes on them grow at one end instead of a random page per
    # order. Orders placed in different milliseconds sort, as stored text, in the order they were made.
    orders = []
    for _ in range(3):
        orders.append(buy(env, "0.1").order_id)
        time.sleep(0.002)  # the next order in a later millisecond
    assert all(uuid.UUID(order_id).version == 7 for order_id in orders)
    assert sorted(orders) == orders
    with read_session() as session:
        entries = session.exec(select(LedgerEntry).where(col(LedgerEntry.reference).in_(orders))).all()
    entries.sort(key=lambda entry: orders.index(entry.reference or ""))
    assert [uuid.UUID(e.transaction_id).version for e in entries] == [7, 7, 7]
    assert sorted(e.transaction_id for e in entries) == [e.transaction_id for e in entries]


def test_buy_rounds_up_and_sell_rounds_down_to_the_cent(env: str) -> None:
    set_price("BTC", "0.333")
    order = buy(env, "1")
    assert order.total_amount == D("0.34")  # 0.333 rounded up: the buyer never pays less than the value
    order = sell(env, "1")
    assert order.total_amount == D("0.33")  # rounded down: the seller never gets more
    assert account_of(env).cash == D("9999.99")
    check_invariants()


def test_fee_is_its_own_ledger_entry(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_FEE_BPS", "25")
    reset_settings()
    order = buy(env, "1")  # 100.00, fee 0.25
    assert order.fee == D("0.25") and order.net_amount == D("100.25")
    with read_session() as session:
        entries = session.exec(select(LedgerEntry).where(LedgerEntry.reference == order.order_id)).all()
    assert sorted((e.entry_type, e.amount) for e in entries) == [("fee", D("-0.25")), ("order_payment", D("-100.00"))]
    holding = holding_of(env, "BTC")
    assert holding is not None and holding.average_cost == D("100.25")  # cost includes the fee
    sold = sell(env, "1")
    assert sold.fee == D("0.25") and sold.net_amount == D("99.75")
    holding = holding_of(env, "BTC")
    assert holding is not None and holding.realized_pnl == D("-0.50")
    assert account_of(env).cash == D("9999.50")
    check_invariants()


def test_weighted_average_cost_and_realized_pnl(env: str) -> None:
    buy(env, "1")  # 100
    set_price("BTC", "200")
    buy(env, "1")  # 200 -> average 150
    holding = holding_of(env, "BTC")
    assert holding is not None and holding.average_cost == D(150)
    set_price("BTC", "300")
    sell(env, "0.5")  # proceeds 150, cost 75 -> +75
    holding = holding_of(env, "BTC")
    assert holding is not None
    assert holding.quantity == D("1.5") and holding.realized_pnl == D("75.00") and holding.average_cost == D(150)
    sell(env, "1.5")
    holding = holding_of(env, "BTC")
    assert holding is not None and holding.quantity == 0 and holding.average_cost == 0
    assert holding.realized_pnl == D("300.00")
    check_invariants()


def test_oversell_is_refused_with_the_shortfall_and_writes_nothing(env: str) -> None:
    buy(env, "1")
    with pytest.raises(BusinessRuleViolation, match=r"short by 0\.5") as info:
        sell(env, "1.5")
    assert info.value.field == "quantity"
    with pytest.raises(BusinessRuleViolation, match="Insufficient ETH"):
        sell(env, "1", "ETH")
    with read_session() as session:
        assert len(session.exec(select(Order)).all()) == 1
    check_invariants()


def test_insufficient_cash_names_the_shortfall(env: str) -> None:
    buy(env, "50")
    with pytest.raises(BusinessRuleViolation, match=r"short by \$1\.00"):
        buy(env, "50.01")
    assert account_of(env).cash == D("5000.00")
    check_invariants()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"order_type": "market_hold"}, "order_type"),
        ({"order_type": 5}, "order_type"),
        ({"asset_id": "B-TC"}, "asset_id"),
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "0.0009"}, "quantity"),
        ({"quantity": "0.123456789"}, "quantity"),
        ({"quantity": "abc"}, "quantity"),
        ({"quantity": "NaN"}, "quantity"),
        ({"quantity": None}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"order_type": "limit_buy"}, "price"),
        ({"order_type": "limit_buy", "price": "0"}, "price"),
        ({"order_type": "limit_buy", "price": "1000000.01"}, "price"),
        ({"order_type": "limit_sell", "price": "-5"}, "price"),
        ({"order_type": "limit_buy", "price": "5", "expires_at": "yesterday"}, "expires_at"),
        ({"order_type": "limit_buy", "price": "5", "expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
        ({"client_order_id": "x" * 65}, "client_order_id"),
    ],
)
def test_bad_input_names_the_field(env: str, data: dict, field: str) -> None:
    request = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "1", **data}
    with pytest.raises(ValidationFailed) as info:
        trading.place_order(env, request)
    assert info.value.field == field
    check_invariants()


def test_asset_must_exist_be_active_and_priced(env: str) -> None:
    with pytest.raises(ValidationFailed, match="Unknown asset"):
        buy(env, "1", "NOPE")
    set_active("ETH", False)
    with pytest.raises(BusinessRuleViolation, match="not available"):
        buy(env, "1", "ETH")
    add_asset("NEW", None)
    with pytest.raises(BusinessRuleViolation, match="No current price"):
        buy(env, "1", "NEW")


def test_order_value_limit(env: str) -> None:
    fund(env, "5000")
    with pytest.raises(BusinessRuleViolation, match="exceeds the maximum"):
        buy(env, "100.01")
    with pytest.raises(BusinessRuleViolation, match="exceeds the maximum"):
        limit(env, "buy", "2", "5000.01")
    assert buy(env, "100").total_amount == D("10000.00")


def test_market_order_ignores_price_and_expiry(env: str) -> None:
    order = buy(env, "1", price="garbage", expires_at="not a date")
    assert order.executed_price == D(100) and order.limit_price is None and order.expires_at is None


def test_limit_buy_holds_cash_and_cancel_releases_it(env: str) -> None:
    order = limit(env, "buy", "2", "90")
    assert order.status == "pending" and order.held_amount == D("180.00")
    account = account_of(env)
    assert account.cash == D("10000.00") and account.held == D("180.00")
    with pytest.raises(BusinessRuleViolation, match="available"):
        buy(env, "98.3")  # 9830 > 10000 - 180
    check_invariants()
    cancelled = trading.cancel_order(env, order.order_id)
    assert cancelled.status == "cancelled" and account_of(env).held == 0
    with pytest.raises(Conflict):
        trading.cancel_order(env, order.order_id)
    check_invariants()


def test_limit_sell_holds_quantity(env: str) -> None:
    buy(env, "2")
    order = limit(env, "sell", "1.5", "150")
    holding = holding_of(env, "BTC")
    assert holding is not None and holding.held_quantity == D("1.5")
    with pytest.raises(BusinessRuleViolation, match=r"available 0\.5"):
        sell(env, "1")
    with pytest.raises(BusinessRuleViolation):
        limit(env, "sell", "1", "150")
    trading.cancel_order(env, order.order_id)
    assert sell(env, "1").status == "completed"
    check_invariants()


def test_matcher_fills_crossed_orders_at_the_limit_in_creation_order(env: str) -> None:
    buy(env, "3")
    first = limit(env, "buy", "1", "90")
    second = limit(env, "buy", "1", "80")
    ask = limit(env, "sell", "1", "120")
    assert trading.match_limit_orders() == 0
    set_price("BTC", "85")
    assert trading.match_limit_orders() == 1
    assert trading.get_order(env, first.order_id).status == "completed"
    assert trading.get_order(env, first.order_id).executed_price == D(90)  # at the limit, not the market
    assert trading.get_order(env, second.order_id).status == "pending"
    set_price("BTC", "79.99")
    set_price("ETH", "10")
    assert trading.match_limit_orders() == 1
    set_price("BTC", "130")
    assert trading.match_limit_orders() == 1
    filled = trading.get_order(env, ask.order_id)
    assert filled.status == "completed" and filled.total_amount == D("120.00")
    fills, _ = trading.list_asset_transactions(env, "BTC")
    assert [f.order_id for f in reversed(fills)][1:] == [first.order_id, second.order_id, ask.order_id]
    # cash: 10000 - 300 - 90 - 80 + 120
    account = account_of(env)
    assert account.cash == D("9650.00") and account.held == 0
    check_invariants()


def test_matcher_skips_inactive_assets(env: str) -> None:
    order = limit(env, "buy", "1", "90")
    set_price("BTC", "50")
    set_active("BTC", False)
    assert trading.match_limit_orders() == 0
    assert trading.get_order(env, order.order_id).status == "pending"


def test_expiry_releases_holds(env: str) -> None:
    buy(env, "1")
    soon = (utcnow() + timedelta(minutes=5)).isoformat()
    bid = limit(env, "buy", "1", "50", expires_at=soon)
    ask = limit(env, "sell", "1", "500", expires_at=soon)
    gtc = limit(env, "buy", "1", "40")
    assert trading.expire_orders() == 0
    later = utcnow() + timedelta(minutes=6)
    assert trading.match_limit_orders(later) == 0
    assert trading.get_order(env, bid.order_id).status == "expired"
    assert trading.get_order(env, ask.order_id).status == "expired"
    assert trading.get_order(env, gtc.order_id).status == "pending"
    assert account_of(env).held == D("40.00")
    holding = holding_of(env, "BTC")
    assert holding is not None and holding.held_quantity == 0
    with pytest.raises(Conflict):
        trading.cancel_order(env, bid.order_id)
    check_invariants()


def test_expired_order_is_not_filled_even_if_crossed(env: str) -> None:
    soon = (utcnow() + timedelta(minutes=1)).isoformat()
    order = limit(env, "buy", "1", "90", expires_at=soon)
    set_price("BTC", "10")
    assert trading.match_limit_orders(utcnow() + timedelta(minutes=2)) == 0
    assert trading.get_order(env, order.order_id).status == "expired"
    check_invariants()


def test_client_order_id_makes_retries_return_the_original(env: str) -> None:
    first = buy(env, "1", client_order_id="abc-1")
    again = buy(env, "1", client_order_id="abc-1")
    assert again.order_id == first.order_id
    assert account_of(env).cash == D("9900.00")
    with pytest.raises(Conflict):
        buy(env, "2", client_order_id="abc-1")
    other = make_user("bob_0001", "1000")
    assert buy(other, "1", client_order_id="abc-1").order_id != first.order_id  # keys are per user
    check_invariants()


def test_idempotency_key_replays_and_guards_the_body(env: str) -> None:
    data = {"order_type": "limit_buy", "asset_id": "BTC", "quantity": "1", "price": "50"}
    first = trading.place_order(env, data, idempotency_key="k1")
    again = trading.place_order(env, data, idempotency_key="k1")
    assert again.order_id == first.order_id and account_of(env).held == D("50.00")
    with pytest.raises(ValidationFailed, match="different request"):
        trading.place_order(env, {**data, "quantity": "2"}, idempotency_key="k1")
    with pytest.raises(ValidationFailed):
        trading.place_order(env, data, idempotency_key="")


def test_failed_order_with_a_key_can_be_retried(env: str) -> None:
    data = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "200"}
    with pytest.raises(BusinessRuleViolation):
        trading.place_order(env, data, idempotency_key="k2")
    fund(env, "10000")
    assert trading.place_order(env, {**data, "quantity": "100"}, idempotency_key="k2").status == "completed"


def test_list_orders_filters_and_pages_newest_first(env: str) -> None:
    ids = [buy(env, "0.01").order_id for _ in range(3)]
    pending = limit(env, "buy", "1", "10")
    sell(env, "0.01")
    buy(env, "1", "ETH")
    rows, more = trading.list_orders(env, limit=2)
    assert len(rows) == 2 and more
    everything, more = trading.list_orders(env, limit=50)
    assert not more and len(everything) == 6
    stamps = [o.created_at for o in everything]
    assert stamps == sorted(stamps, reverse=True)
    assert [o.order_id for o in trading.list_orders(env, status="pending")[0]] == [pending.order_id]
    assert len(trading.list_orders(env, asset_id="eth")[0]) == 1
    buys = trading.list_orders(env, order_type="market_buy", asset_id="BTC")[0]
    assert sorted(o.order_id for o in buys) == sorted(ids)
    with pytest.raises(ValidationFailed):
        trading.list_orders(env, status="done")
    with pytest.raises(ValidationFailed):
        trading.list_orders(env, order_type="buy")
    with pytest.raises(ValidationFailed):
        trading.list_orders(env, limit=0)


def test_other_users_orders_are_invisible(env: str) -> None:
    order = limit(env, "buy", "1", "10")
    bob = make_user("bob_0001", "100")
    with pytest.raises(NotFound):
        trading.get_order(bob, order.order_id)
    with pytest.raises(NotFound):
        trading.cancel_order(bob, order.order_id)
    assert trading.list_orders(bob)[0] == []
    with pytest.raises(NotFound):
        trading.get_order(env, "no-such-order")


def test_asset_transactions_unknown_asset_is_not_found(env: str) -> None:
    with pytest.raises(NotFound):
        trading.list_asset_transactions(env, "NOPE")
    buy(env, "1")
    sell(env, "0.5")
    rows, more = trading.list_asset_transactions(env, "btc", limit=1)
    assert more and rows[0].transaction_type == "SELL"


def test_outbox_rows_commit_with_the_order(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_DYNAMODB_ENDPOINT", "http://127.0.0.1:9")
    reset_settings()
    order = buy(env, "1")
    with read_session() as session:
        rows = session.exec(select(Outbox).order_by(Outbox.id)).all()  # type: ignore[arg-type]
    entities = [(r.entity, r.entity_key) for r in rows]
    assert ("order", order.order_id) in entities
    assert ("holding", f"{env}#BTC") in entities
    assert any(e == "asset_transaction" for e, _ in entities)
    assert any(e == "ledger" for e, _ in entities) and ("balance", env) in entities
    payload = json.loads(next(r.payload for r in rows if r.entity == "order"))
    assert payload["status"] == "completed" and payload["total_amount"] == "100.00"
    with pytest.raises(BusinessRuleViolation):
        sell(env, "5")
    with read_session() as session:
        assert len(session.exec(select(Outbox)).all()) == len(rows)  # the refused order wrote nothing


def test_portfolio_values_pnl_and_allocation(env: str) -> None:
    buy(env, "2")  # 200
    buy(env, "10", "ETH")  # 100
    set_price("BTC", "150")
    set_price("ETH", "5")
    limit(env, "buy", "1", "10")
    view = portfolio.get_portfolio(env)
    by_id = {h.asset_id: h for h in view.holdings}
    btc, eth = by_id["BTC"], by_id["ETH"]
    assert btc.market_value == D("300.00") and btc.cost_basis == D("200.00")
    assert btc.unrealized_pnl == D("100.00") and btc.unrealized_pnl_percent == D("50.00")
    assert eth.unrealized_pnl == D("-50.00") and eth.unrealized_pnl_percent == D("-50.00")
    assert btc.allocation_percent == D("85.71") and eth.allocation_percent == D("14.29")
    assert [h.asset_id for h in view.holdings] == ["BTC", "ETH"]
    totals = view.totals
    assert totals.cash == D("9700.00") and totals.held_cash == D("10.00") and totals.available_cash == D("9690.00")
    assert totals.holdings_value == D("350.00") and totals.total_equity == D("10050.00")
    assert totals.unrealized_pnl == D("50.00")
    assert btc.quantity == D(2)  # the JSON shape is the API's contract (tests/api)
    assert portfolio.get_holding(env, "eth").quantity == D(10)
    with pytest.raises(NotFound):
        portfolio.get_holding(env, "XRP")
    sell(env, "10", "ETH")
    with pytest.raises(NotFound):
        portfolio.get_holding(env, "ETH")
    assert portfolio.get_portfolio(env).totals.realized_pnl == D("-50.00")


def test_snapshots_and_history(env: str) -> None:
    make_user("bob_0001", "50")
    buy(env, "1")
    assert portfolio.record_snapshots() == 2
    set_price("BTC", "200")
    assert portfolio.record_snapshots() == 2
    points = portfolio.history(env, "24h")
    assert [p.total_value for p in points] == [D("10000.00"), D("10100.00")]
    assert points[-1].holdings_value == D("200.00")
    assert portfolio.history(env, "30d") == points
    old = utcnow() - timedelta(days=3)
    portfolio.record_snapshots(old)
    assert len(portfolio.history(env, "24h")) == 2 and len(portfolio.history(env, "7d")) == 3
    with pytest.raises(ValidationFailed):
        portfolio.history(env, "1y")
    portfolio.record_snapshots(utcnow() + timedelta(days=40))  # prunes everything older than 31 days
    with read_session() as session:
        assert len(session.exec(select(PortfolioSnapshot)).all()) == 2


def test_a_snapshot_values_every_account_from_one_read(env: str) -> None:
    """Each account's cash plus its holdings at their prices: several holdings add up, a sold-out one
    counts nothing, an asset without a price counts at cost, an account without holdings is its cash.
    The inputs come from one SELECT, so on PostgreSQL an order committing meanwhile is seen whole or
    not at all (not its cash without its holding)."""
    make_user("bob_0001", "50")
    buy(env, "2")  # BTC at 100
    buy(env, "3", "ETH")  # ETH at 10
    buy(env, "1", "ETH")
    sell(env, "4", "ETH")  # sold out: a holding row of quantity zero
    make_user("carol_01", "1000")
    buy("carol_01", "1.5", "ETH")
    set_price("BTC", "120.005")  # value 240.01 (to the cent)
    set_price("ETH", None)  # carol's 1.5 ETH at its cost, 15.00
    with executed_on(write_engine()) as sent:
        assert portfolio.record_snapshots() == 3
    assert len([s for s, _ in sent if s.lstrip().upper().startswith("SELECT")]) == 1
    with read_session() as session:
        got = {s.username: (s.cash, s.holdings_value, s.total_value) for s in session.exec(select(PortfolioSnapshot))}
    alice_cash = account_of(env).cash
    assert got == {
        env: (alice_cash, D("240.01"), alice_cash + D("240.01")),
        "bob_0001": (D(50), D(0), D(50)),
        "carol_01": (D("985.00"), D("15.00"), D("1000.00")),
    }


def test_snapshots_are_one_insert_and_the_pruning_reads_by_time(env: str) -> None:
    """A refresh writes a snapshot per account: one INSERT for all of them, and the delete of old ones
    is a range scan of the time index, not a walk of the whole table (a row per account per refresh)."""
    make_user("bob_0001", "50")
    engine = write_engine()
    with executed_on(engine) as sent:
        assert portfolio.record_snapshots() == 2
    assert len([s for s, _ in sent if s.lstrip().upper().startswith("INSERT INTO PORTFOLIO_SNAPSHOTS")]) == 1
    prune, parameters = next((s, p) for s, p in sent if s.lstrip().upper().startswith("DELETE FROM PORTFOLIO"))
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(row) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + prune, parameters))
        else:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a test table is small: ask for the index
            plan = " ".join(str(row) for row in conn.exec_driver_sql("EXPLAIN " + prune, parameters))
        conn.rollback()
    assert "ix_portfolio_snapshots_at" in plan, plan
