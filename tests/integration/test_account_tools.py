"""Account tools of every user: reset the paper account, the watchlist, value over time rebuilt from history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import col, select, update

from cnop_app.config import reset_settings
from cnop_app.db import read_session, write_session
from cnop_app.domain.errors import BusinessRuleViolation, NotFound, ValidationFailed
from cnop_app.domain.timeutil import utcnow
from cnop_app.models import AssetTransaction, LedgerEntry, Order, PortfolioSnapshot, PriceTick
from cnop_app.services import account_reset, accounts, admin, portfolio, trading, watchlist
from tests.support.admin_api import audit_rows, outbox_entities
from tests.support.trading_fixtures import (
    account_of,
    add_asset,
    check_invariants,
    holding_of,
    make_user,
    set_active,
    set_price,
)


@pytest.fixture
def env(any_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("CNOP_FEE_BPS", "30")
    reset_settings()
    add_asset("BTC", "100")
    add_asset("ETH", "10")
    add_asset("DOGE", "0.5")
    add_asset("NOPR", "2")
    yield any_db


def order(user: str, kind: str, asset: str, quantity: str, price: str | None = None) -> trading.OrderView:
    data = {"order_type": kind, "asset_id": asset, "quantity": quantity, "price": price}
    return trading.place_order(user, data)


# ---------------------------------------------------------------- reset


def test_reset_cancels_closes_and_sets_the_cash(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_DYNAMODB_ENDPOINT", "http://127.0.0.1:9")
    reset_settings()
    user = make_user("bob_0001", "5000")
    order(user, "market_buy", "BTC", "2")
    order(user, "market_buy", "ETH", "10.0015")
    order(user, "market_sell", "ETH", "10")  # leaves 0.0015 ETH: below the minimum order quantity
    order(user, "market_buy", "DOGE", "100")
    order(user, "market_buy", "NOPR", "1")
    buy_limit = order(user, "limit_buy", "BTC", "1", "50")
    sell_limit = order(user, "limit_sell", "BTC", "0.5", "500")
    set_active("DOGE", False)  # trading paused: still closed
    set_price("NOPR", None)  # no price: closed at its average cost
    set_price("BTC", "120")
    entries_before = accounts.list_transactions(user)[1]
    nopr_cost = holding_of(user, "NOPR").average_cost  # type: ignore[union-attr]

    result = account_reset.reset_account(user, "10000", ip="198.51.100.4")

    assert result.cancelled_orders == 2 and result.starting_cash == Decimal("10000.00")
    assert {p.asset_id: p.quantity for p in result.closed_positions} == {
        "BTC": Decimal("2"),
        "DOGE": Decimal("100"),
        "ETH": Decimal("0.0015"),
        "NOPR": Decimal("1"),
    }
    closed = {p.asset_id: p for p in result.closed_positions}
    assert closed["BTC"].price == Decimal("120") and closed["BTC"].proceeds == Decimal("239.28")  # 240 - 0.72 fee
    assert closed["NOPR"].price == nopr_cost == Decimal("2.01")  # 2 + 0.01 fee
    account = account_of(user)
    assert account.cash == Decimal("10000.00") and account.held == 0 and result.cash_after == account.cash
    assert result.adjustment == Decimal("10000.00") - (result.cash_before + sum(p.proceeds for p in closed.values()))
    for asset in ("BTC", "ETH", "DOGE", "NOPR"):
        holding = holding_of(user, asset)
        assert holding is not None and holding.quantity == 0 and holding.held_quantity == 0
    assert trading.get_order(user, buy_limit.order_id).status == "cancelled"
    assert trading.get_order(user, sell_limit.order_id).status == "cancelled"
    assert trading.list_open_orders(user) == []
    # History kept: every earlier entry is still there, plus the sales, their fees and one adjustment.
    rows, total = accounts.list_transactions(user, limit=500)
    assert total == entries_before + 4 + 4 + 1
    assert rows[0].transaction_type == "system_adjustment" and rows[0].reference == result.reset_id
    assert rows[0].description == "Account reset to $10000.00"
    with read_session() as session:
        sales = session.exec(select(Order).where(col(Order.client_order_id).startswith("reset-"))).all()
    assert len(sales) == 4 and {o.status for o in sales} == {"completed"}
    row = audit_rows("account_reset")[0]
    assert row["username"] == user and row["ip"] == "198.51.100.4" and row["starting_cash"] == "10000.00"
    assert row["cancelled_orders"] == 2 and row["closed_positions"]["ETH"] == "0.0015"
    assert ("balance", user) in outbox_entities() and ("holding", f"{user}#BTC") in outbox_entities()
    check_invariants()
    assert admin.verify_ledger().ok
    # Trading goes on from the new balance; a second reset to zero works too.
    order(user, "market_buy", "BTC", "1")
    again = account_reset.reset_account(user, 0)
    assert again.cancelled_orders == 0 and [p.asset_id for p in again.closed_positions] == ["BTC"]
    assert account_of(user).cash == 0
    assert admin.verify_ledger().ok


def test_reset_of_an_empty_account_without_change_posts_nothing(env: str) -> None:
    user = make_user("bob_0001", "100")
    result = account_reset.reset_account(user, "100.00")
    assert result.adjustment == 0 and result.closed_positions == [] and accounts.list_transactions(user)[1] == 1


@pytest.mark.parametrize("value", ["-1", "1000000.01", "1.234", "abc", None, True])
def test_reset_validates_the_starting_cash(env: str, value: object) -> None:
    user = make_user("bob_0001", "100")
    order(user, "market_buy", "BTC", "0.5")
    with pytest.raises(ValidationFailed) as err:
        account_reset.reset_account(user, value)
    assert err.value.field == "starting_cash"
    assert holding_of(user, "BTC").quantity == Decimal("0.5")  # type: ignore[union-attr]


# ---------------------------------------------------------------- watchlist


def test_watchlist(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    user = make_user("bob_0001")
    other = make_user("eve_0001")
    assert watchlist.list_items(user) == []
    assert watchlist.add(user, "eth") is True
    assert watchlist.add(user, "BTC") is True
    assert watchlist.add(user, "ETH") is False  # already starred
    watchlist.add(other, "DOGE")
    items = watchlist.list_items(user)
    assert [i.asset_id for i in items] == ["ETH", "BTC"]  # oldest star first
    assert items[1].price_usd == Decimal("100") and items[1].name == "Btc" and items[1].is_active
    assert watchlist.asset_ids(user) == {"ETH", "BTC"}
    with pytest.raises(NotFound):
        watchlist.add(user, "NOPE")
    with pytest.raises(ValidationFailed) as err:
        watchlist.add(user, "no-such!")
    assert err.value.field == "asset_id"
    assert watchlist.remove(user, "eth") is True
    assert watchlist.remove(user, "ETH") is False
    assert [i.asset_id for i in watchlist.list_items(user)] == ["BTC"]
    assert [i.asset_id for i in watchlist.list_items(other)] == ["DOGE"]
    monkeypatch.setattr(watchlist, "MAX_ITEMS", 1)
    with pytest.raises(BusinessRuleViolation, match="at most 1"):
        watchlist.add(user, "ETH")


# ---------------------------------------------------------------- value over time rebuilt from history


def _backdate(user: str, hours_ago: float, model: type = LedgerEntry) -> None:
    """Move the user's newest rows of `model` back in time (services always stamp "now")."""
    when = utcnow() - timedelta(hours=hours_ago)
    with write_session() as session:
        newest = session.exec(
            select(model.created_at).where(model.username == user).order_by(col(model.created_at).desc())  # type: ignore[attr-defined]
        ).first()
        session.exec(update(model).where(model.username == user, model.created_at == newest).values(created_at=when))  # type: ignore[attr-defined,call-overload]


def _ticks(asset: str, points: list[tuple[float, str]]) -> None:
    with write_session() as session:
        for hours_ago, price in points:
            session.add(PriceTick(asset_id=asset, price=Decimal(price), at=utcnow() - timedelta(hours=hours_ago)))


def test_a_new_user_sees_a_real_curve_without_snapshots(env: str) -> None:
    user = make_user("bob_0001", "1000")  # deposit 1000
    _backdate(user, 30)
    order(user, "market_buy", "BTC", "2")  # 200 + 0.60 fee, 20 hours ago
    _backdate(user, 20)
    _backdate(user, 20, AssetTransaction)
    _ticks("BTC", [(48, "90"), (18, "110"), (6, "150")])
    set_price("BTC", "160")

    points = portfolio.history(user, "24h")
    assert len(points) > 100
    assert points[0].at >= utcnow() - timedelta(hours=24, minutes=1)
    first = points[0]  # 24 hours ago: cash only (the buy was 20 hours ago)
    assert first.cash == Decimal("1000") and first.holdings_value == 0 and first.total_value == Decimal("1000")
    at_19h = next(p for p in points if p.at >= utcnow() - timedelta(hours=19))  # bought at 100, ticked 90
    assert at_19h.cash == Decimal("799.40") and at_19h.holdings_value == Decimal("180.00")
    at_12h = next(p for p in points if p.at >= utcnow() - timedelta(hours=12))
    assert at_12h.holdings_value == Decimal("220.00")
    last = points[-1]  # now: the current price, the value the portfolio shows
    assert last.holdings_value == Decimal("320.00")
    assert last.total_value == portfolio.get_portfolio(user).totals.total_equity
    assert [p.at for p in points] == sorted(p.at for p in points)

    week = portfolio.history(user, "7d")
    assert week[0].at >= utcnow() - timedelta(hours=30, minutes=1)  # starts at the first deposit
    assert week[0].total_value == Decimal("1000")


def test_rebuilt_values_fill_the_range_before_the_first_snapshot(env: str) -> None:
    user = make_user("bob_0001", "500")
    _backdate(user, 10)
    with write_session() as session:
        for hours_ago in (3, 2, 1):  # recorded values told apart from rebuilt ones by their cash
            at = utcnow() - timedelta(hours=hours_ago)
            session.add(PortfolioSnapshot(username=user, at=at, cash=Decimal(501), holdings_value=0, total_value=501))
    points = portfolio.history(user, "24h")
    rebuilt = [p for p in points if p.total_value == 500]
    recorded = [p for p in points if p.total_value == 501]
    assert len(recorded) == 3 and points == rebuilt + recorded  # rebuilt first, then the snapshots
    assert rebuilt[0].at >= utcnow() - timedelta(hours=10, seconds=5)  # from the first deposit
    assert rebuilt[-1].at < recorded[0].at and len(rebuilt) > 100
    # Snapshots covering the whole range: nothing rebuilt.
    with write_session() as session:
        at = utcnow() - timedelta(hours=23, minutes=59)
        session.add(PortfolioSnapshot(username=user, at=at, cash=Decimal(1), holdings_value=0, total_value=1))
    assert len(portfolio.history(user, "24h")) == 4


def test_no_history_means_no_points(env: str) -> None:
    user = make_user("bob_0001")
    assert portfolio.history(user, "24h") == []
