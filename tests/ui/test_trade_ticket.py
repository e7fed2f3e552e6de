"""The trade ticket driven as a browser would: preview, review, confirm, open orders and cancel."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from cnop_app import formatting
from cnop_app.config import reset_settings
from cnop_app.domain import trading as rules
from cnop_app.services import accounts, trading
from cnop_app.state.live import refresh_client
from cnop_app.state.trade import TradeState
from tests.ui.helpers import listed_asset, sign_up, tab, toasts


@pytest.fixture
def fee_bps(monkeypatch: pytest.MonkeyPatch) -> object:
    def set_fee(bps: str) -> None:
        monkeypatch.setenv("CNOP_FEE_BPS", bps)
        reset_settings()

    return set_fee


def _ticket(username: str, cash: str = "1000", path: str = "/trade?asset=AAA") -> TradeState:
    state = tab(TradeState, path, token=sign_up(username, cash))
    assert state.load() is None
    return state


def _place(state: TradeState) -> list:
    assert state.review() is None, state.ticket_errors
    assert state.confirming and state.ticket_errors == {}
    return state.confirm()


def test_load_lists_active_assets_and_reads_the_link(ui_env: Path) -> None:
    listed_asset("AAA", "10")
    listed_asset("BBB", "2")
    state = _ticket("ticket_load", path="/trade?asset=bbb&side=sell")
    assert {a["id"] for a in state.assets} == {"AAA", "BBB"}
    assert state.asset_id == "BBB" and state.side == "sell"
    assert state.preview["market_price"] == "$2.00" and state.preview["cash"] == "$1,000.00"
    assert state.live and not state.loading


def test_market_buy_preview_by_quantity(ui_env: Path, fee_bps: object) -> None:
    fee_bps("25")  # type: ignore[operator]
    listed_asset("AAA", "10")
    state = _ticket("preview_buy")
    state.set_quantity("2")
    p = state.preview
    assert (p["price"], p["quantity"], p["gross"], p["fee"], p["total"]) == ("$10.00", "2", "$20.00", "$0.05", "$20.05")
    assert (p["cash_after"], p["qty_after"], p["ready"]) == ("$979.95", "2", "yes")


def test_buy_preview_by_usd_spends_at_most_the_amount(ui_env: Path) -> None:
    listed_asset("AAA", "3")
    state = _ticket("preview_usd")
    state.set_amount_mode("usd")
    state.set_usd("25")
    assert state.amount_mode == "usd"
    assert state.preview["quantity"] == "8.33333333"  # rounded down: 25 / 3
    assert state.preview["gross"] == "$25.00"
    state.set_amount_mode("bitcoins")  # not a mode: ignored
    assert state.amount_mode == "usd"


def test_limit_preview_uses_the_limit_price(ui_env: Path) -> None:
    listed_asset("AAA", "10")
    state = _ticket("preview_limit")
    state.set_kind("limit")
    state.set_limit("9.5")
    state.set_quantity("2")
    assert state.preview["market_price"] == "$10.00"
    assert (state.preview["price"], state.preview["gross"], state.preview["total"]) == ("$9.50", "$19.00", "$19.00")


def test_sell_preview_and_fill_agree_with_the_service_when_the_fee_exceeds_the_sale(
    ui_env: Path, fee_bps: object
) -> None:
    """With fee_bps 20000 a sale's fee is capped at its gross: the preview shows what the fill books."""
    listed_asset("AAA", "10")
    state = _ticket("preview_sell", cash="1000")
    state.set_quantity("2")
    _place(state)
    fee_bps("20000")  # type: ignore[operator]
    state.set_side("sell")
    state.set_quantity("1.5")
    p = dict(state.preview)
    expected = rules.quote(False, Decimal("1.5"), Decimal("10"), Decimal("20000"))
    assert (p["gross"], p["fee"], p["total"]) == ("$15.00", "$15.00", "$0.00")
    assert expected.fee == expected.gross  # capped: uncapped it would be $30.00, a sale that costs money
    cash_before = accounts.get_balance("preview_sell").available
    assert toasts(_place(state)) == [("success", "Sold 1.5 AAA at $10.00")]
    order = trading.list_orders("preview_sell", status="completed", limit=1)[0][0]
    assert not order.is_buy
    assert formatting.usd(order.total_amount) == p["gross"]
    assert formatting.usd(order.fee) == p["fee"]
    assert formatting.usd(order.net_amount) == p["total"]
    assert accounts.get_balance("preview_sell").available == cash_before + expected.cash_delta
    assert formatting.usd(cash_before + expected.cash_delta) == p["cash_after"]
    assert p["qty_after"] == "0.5"


def test_a_confirmed_market_buy_is_placed_once(ui_env: Path, fee_bps: object) -> None:
    fee_bps("25")  # type: ignore[operator]
    listed_asset("AAA", "10")
    state = _ticket("market_buyer")
    state.set_quantity("2")
    preview = dict(state.preview)
    assert state.review() is None
    key = state._pending_key
    assert state.confirming and key
    result = state.confirm()
    assert toasts(result) == [("success", "Bought 2 AAA at $10.00")]
    assert not state.confirming and not state.submitting and state._pending_key == ""
    assert state.quantity_input == ""
    assert state.confirm() is None  # nothing under review any more: no second order
    rows, _ = trading.list_orders("market_buyer")
    assert len(rows) == 1 and rows[0].status == "completed"
    assert formatting.usd(rows[0].net_amount) == preview["total"] == "$20.05"
    assert state.preview["cash"] == preview["cash_after"] == "$979.95"
    assert state.preview["holding"] == "2"


def test_cancelling_the_review_places_nothing(ui_env: Path) -> None:
    listed_asset("AAA", "10")
    state = _ticket("changed_mind")
    state.set_quantity("1")
    assert state.review() is None and state.confirming
    state.cancel_review()
    assert not state.confirming and state.confirm() is None
    assert trading.list_orders("changed_mind")[0] == []


@pytest.mark.parametrize(
    ("kind", "quantity", "limit", "field", "message"),
    [
        ("market", "", "", "quantity", "quantity is required"),
        ("market", "abc", "", "quantity", "quantity must be a number"),
        ("market", "0.0001", "", "quantity", "quantity must be at least 0.001"),
        ("market", "1.123456789", "", "quantity", "quantity must have at most 8 decimal places"),
        ("limit", "1", "", "price", "price is required for limit orders"),
        ("limit", "1", "-5", "price", "price must be greater than 0"),
        ("limit", "1", "2000000", "price", "price must be at most 1,000,000"),
    ],
)
def test_bad_input_is_named_under_its_field(
    ui_env: Path, kind: str, quantity: str, limit: str, field: str, message: str
) -> None:
    listed_asset("AAA", "10")
    state = _ticket(f"bad_{kind}_{len(quantity)}_{len(limit)}")
    state.set_kind(kind)
    state.set_quantity(quantity)
    state.set_limit(limit)
    assert state.review() is None
    assert not state.confirming
    assert state.ticket_errors == {field: message}
    state.set_quantity("2")  # typing again clears the message
    assert state.ticket_errors == {}


def test_refusals_at_confirmation_are_shown_on_the_ticket(ui_env: Path) -> None:
    listed_asset("AAA", "10")
    state = _ticket("poor_trader", cash="5")
    state.set_quantity("1")
    assert state.review() is None and state.confirming  # the preview allows it; the order is checked on placing
    assert state.confirm() is None
    assert not state.confirming and not state.submitting
    assert state.ticket_errors == {"quantity": "Insufficient funds: available $5.00, short by $5.00"}
    state.set_side("sell")
    assert state.review() is None and state.confirming
    assert state.confirm() is None
    assert "Insufficient AAA" in state.ticket_errors["quantity"]


def test_an_open_limit_order_can_be_cancelled(ui_env: Path) -> None:
    listed_asset("AAA", "10")
    state = _ticket("limit_canceller")
    state.set_kind("limit")
    state.set_limit("8")
    state.set_quantity("2")
    state.set_expiry("1d")
    assert toasts(_place(state)) == [("success", "Limit buy order placed for 2 AAA at $8.00")]
    [row] = state.open_orders
    assert (row["type"], row["side"], row["status"], row["status_colour"]) == ("Limit buy", "buy", "pending", "amber")
    assert row["expires"] != "until cancelled"
    assert state.preview["cash"] == "$984.00"  # $16.00 held for the order

    result = state.cancel_order(row["id"])
    assert toasts(result) == [("info", "Order cancelled; its hold is released")]
    assert state.open_orders == []
    assert state.preview["cash"] == "$1,000.00"
    assert trading.get_order("limit_canceller", row["id"]).status == "cancelled"
    assert toasts(state.cancel_order(row["id"]))[0][0] == "error"  # already cancelled


def test_a_fill_pushed_live_leaves_a_notice(ui_env: Path) -> None:
    listed_asset("AAA", "10")
    state = _ticket("live_filler")
    state.set_kind("limit")
    state.set_limit("12")  # above the market: fills at the next match
    state.set_quantity("1")
    _place(state)
    trading.match_limit_orders()
    pushed = refresh_client([state])
    assert state.open_orders == []
    assert state.notice.startswith("Your limit buy of 1 AAA filled at $")
    assert toasts(pushed) == [("success", state.notice)]
    state.dismiss_notice()
    assert state.notice == ""
