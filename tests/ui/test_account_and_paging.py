"""The account page's cash moves, and the newer/older/first-page events shared by every paged list."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from cnop_app.services import accounts, trading
from cnop_app.state import orders as orders_state
from cnop_app.state.account import PAGE_SIZE, AccountState
from cnop_app.state.orders import OrdersState
from tests.support.trading_fixtures import fund
from tests.ui.helpers import listed_asset, sign_up, tab, toasts


def _account(username: str, cash: str = "0") -> AccountState:
    state = tab(AccountState, "/account", token=sign_up(username, cash))
    assert state.load() is None
    return state


def test_deposit_is_reviewed_then_confirmed_once(ui_env: Path) -> None:
    state = _account("depositor")
    assert (state.balance, state.total_count, state.history) == ("$0.00", 0, [])
    assert state.deposit_limit == "$10,000.00" and state.deposit_remaining == "$10,000.00"

    state.review({"kind": "deposit", "amount": "250.5"})
    assert (state.pending_kind, state.pending_amount, state.cash_errors) == ("deposit", "$250.50", {})
    assert accounts.get_balance("depositor").current_balance == 0  # nothing moved yet

    result = state.confirm()
    assert toasts(result) == [("success", "Deposited $250.50")]
    assert state.pending_kind == "" and state._pending_key == ""
    assert state.confirm() is None  # the confirmation is spent: a second click moves nothing
    assert accounts.get_balance("depositor").current_balance == Decimal("250.50")
    assert (state.balance, state.available, state.deposit_remaining) == ("$250.50", "$250.50", "$9,749.50")
    [row] = state.history
    assert (row["type"], row["amount"], row["direction"], row["balance_after"]) == (
        "deposit",
        "$250.50",
        "up",
        "$250.50",
    )


def test_withdraw_and_its_refusals(ui_env: Path) -> None:
    state = _account("withdrawer", cash="100")
    state.review({"kind": "withdraw", "amount": "40"})
    assert toasts(state.confirm()) == [("success", "Withdrew $40.00")]
    assert state.balance == "$60.00"
    assert state.history[0]["direction"] == "down"

    state.review({"kind": "withdraw", "amount": "61"})
    assert state.pending_kind == "withdraw"
    assert state.confirm() is None
    assert state.cash_errors == {"withdraw": "Insufficient funds: available $60.00, short by $1.00"}
    assert state.pending_kind == "" and state.balance == "$60.00"


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("", "amount is required"),
        ("abc", "amount must be a number"),
        ("-5", "amount must be greater than 0"),
        ("1.234", "amount must have at most 2 decimal places"),
    ],
)
def test_bad_amounts_are_named_on_their_form(ui_env: Path, amount: str, message: str) -> None:
    state = _account(f"bad_amount_{len(amount)}")
    state.review({"kind": "deposit", "amount": amount})
    assert state.cash_errors == {"deposit": message}
    assert state.pending_kind == ""


def test_an_unknown_cash_move_and_a_cancelled_review_do_nothing(ui_env: Path) -> None:
    state = _account("undecided")
    state.review({"kind": "transfer", "amount": "10"})
    assert state.pending_kind == "" and state.cash_errors == {}
    state.review({"kind": "deposit", "amount": "10"})
    state.cancel_review()
    assert state.pending_kind == "" and state.confirm() is None
    assert accounts.get_balance("undecided").current_balance == 0


def test_ledger_pages_newest_first(ui_env: Path) -> None:
    token = sign_up("many_entries")
    for n in range(PAGE_SIZE + 1):
        fund("many_entries", str(n + 1))
    state = tab(AccountState, "/account", token=token)
    state.load()
    assert (state.page, state.total_count, state.page_count) == (0, PAGE_SIZE + 1, 2)
    assert len(state.history) == PAGE_SIZE and state.history[0]["amount"] == f"${PAGE_SIZE + 1}.00"
    assert (state.has_prev, state.has_more) == (False, True)

    state.next_page()
    assert (state.page, len(state.history), state.history[0]["amount"]) == (1, 1, "$1.00")
    assert (state.has_prev, state.has_more) == (True, False)
    state.next_page()  # nothing older
    assert state.page == 1

    state.prev_page()
    assert state.page == 0 and len(state.history) == PAGE_SIZE
    state.prev_page()  # nothing newer
    assert state.page == 0

    state.next_page()
    state.first_page()
    assert state.page == 0 and state.history[0]["amount"] == f"${PAGE_SIZE + 1}.00"


def test_order_history_pages_and_filters(ui_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orders_state, "ORDERS_PAGE_SIZE", 2)
    listed_asset("AAA", "10")
    token = sign_up("order_pager", cash="1000")
    for quantity in ("1", "2", "3"):
        trading.place_order("order_pager", {"order_type": "market_buy", "asset_id": "AAA", "quantity": quantity})
    trading.place_order("order_pager", {"order_type": "limit_buy", "asset_id": "AAA", "quantity": "4", "price": "5"})
    state = tab(OrdersState, "/orders", token=token)
    state.load()
    assert [o["quantity"] for o in state.orders] == ["4", "3"]
    assert (state.has_prev, state.has_more) == (False, True)
    state.next_page()
    assert [o["quantity"] for o in state.orders] == ["2", "1"]
    state.prev_page()
    assert state.page == 0

    state.next_page()
    state.set_status_filter("pending")  # a new filter starts again at the newest page
    assert state.page == 0 and [o["status"] for o in state.orders] == ["pending"]
    state.set_status_filter("bogus")
    assert state.status_filter == "all"
    state.set_type_filter("limit_buy")
    assert [o["type"] for o in state.orders] == ["Limit buy"]
    state.set_type_filter("all")
    state.set_asset_filter(" zzz ")
    assert state.asset_filter == "ZZZ" and state.orders == []
