"""Admin services: users, roles, throttling, cash, assets, orders, audit log, overview, integrity check.

Every change must write its audit row in the same transaction: rolled back together, or committed
together. Runs on SQLite and (under `make test`) PostgreSQL.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from sqlmodel import select

from cnop_app import manage, scheduler
from cnop_app.config import reset_settings
from cnop_app.db import UnitOfWork, read_session, write_session
from cnop_app.domain.enums import Role
from cnop_app.domain.errors import (
    AuthenticationFailed,
    BusinessRuleViolation,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from cnop_app.domain.timeutil import utcnow
from cnop_app.models import Account, Holding, LedgerEntry, LoginThrottle, User
from cnop_app.observability.logging import get_logger, request_id_var
from cnop_app.services import admin, audit, auth, leases, market, trading
from cnop_app.services.admin import system as admin_system
from cnop_app.services.admin.context import AdminContext
from cnop_app.services.auth import throttle
from cnop_app.services.market import RefreshResult
from tests.support.admin_api import admin_ctx, audit_rows, make_admin, open_sessions, outbox_entities
from tests.support.helpers import STRONG_PASSWORD, user_payload
from tests.support.trading_fixtures import account_of, add_asset, check_invariants, fund, make_user, set_price

WRONG = "Wrong-Password-99"


@pytest.fixture
def env(any_db: str) -> Iterator[str]:
    make_admin("admin_01")
    add_asset("BTC", "100")
    add_asset("ETH", "10")
    yield any_db


@pytest.fixture
def ctx(env: str) -> AdminContext:
    return admin_ctx("admin_01")


def mirror_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_DYNAMODB_ENDPOINT", "http://127.0.0.1:9")
    reset_settings()


def buy(user: str, asset: str, quantity: str) -> trading.OrderView:
    return trading.place_order(user, {"order_type": "market_buy", "asset_id": asset, "quantity": quantity})


def limit(user: str, side: str, asset: str, quantity: str, price: str) -> trading.OrderView:
    data = {"order_type": f"limit_{side}", "asset_id": asset, "quantity": quantity, "price": price}
    return trading.place_order(user, data)


def test_only_an_admin_gets_a_context(env: str) -> None:
    customer = auth.Principal("bob_0001", Role.CUSTOMER, "jti", utcnow())
    with pytest.raises(Forbidden):
        AdminContext(customer)


def test_the_request_id_comes_from_the_logging_context(env: str) -> None:
    token = request_id_var.set("abc-123")
    try:
        ctx = AdminContext(admin_ctx().principal)
    finally:
        request_id_var.reset(token)
    assert ctx.request_id == "abc-123"


# ---------------------------------------------------------------- users


def test_search_sort_and_paginate(ctx: AdminContext) -> None:
    # admin_01 is "Alice Smith" (the default test payload).
    auth.register(user_payload("zoe_0001", first_name="Zoe", last_name="Smith", email="zoe@school.example"))
    auth.register(user_payload("adam_001", first_name="Adam", last_name="Smithers"))
    auth.register(user_payload("carl_001", first_name="Carl", last_name="Jones"))
    page = admin.search_users(ctx, "smith")
    assert [u.username for u in page.rows] == ["adam_001", "admin_01", "zoe_0001"] and page.total == 3
    assert [u.username for u in admin.search_users(ctx, "SCHOOL.example").rows] == ["zoe_0001"]
    assert [u.username for u in admin.search_users(ctx, "adam smithers").rows] == ["adam_001"]
    newest = admin.search_users(ctx, sort="-created_at", limit=2)
    assert [u.username for u in newest.rows] == ["carl_001", "adam_001"] and newest.total == 4
    by_name = admin.search_users(ctx, sort="name", limit=2, offset=2)
    assert [(u.first_name, u.last_name) for u in by_name.rows] == [("Zoe", "Smith"), ("Adam", "Smithers")]
    assert admin.search_users(ctx, sort="-role").rows[0].role == "customer"
    with pytest.raises(ValidationFailed) as err:
        admin.search_users(ctx, sort="password_hash")
    assert err.value.field == "sort"
    with pytest.raises(ValidationFailed):
        admin.search_users(ctx, limit=0)


def test_like_wildcards_in_a_search_are_literal(ctx: AdminContext) -> None:
    make_user("max_1000")
    make_user("maxx1001")
    assert [u.username for u in admin.search_users(ctx, "x_1").rows] == ["max_1000"]
    assert admin.search_users(ctx, "%").total == 0


def test_user_detail(ctx: AdminContext) -> None:
    auth.register(user_payload("bob_0001"))
    auth.login("bob_0001", STRONG_PASSWORD, ip="203.0.113.5", user_agent="pytest")
    fund("bob_0001", "1000")
    buy("bob_0001", "BTC", "2")
    pending = limit("bob_0001", "buy", "ETH", "1", "5")
    detail = admin.user_detail(ctx, "BOB_0001", ledger_limit=1)
    assert detail.user.username == "bob_0001" and detail.user.cash == Decimal("800.00")
    assert detail.user.held_cash == Decimal("5.00") and detail.user.available_cash == Decimal("795.00")
    assert [(h.asset_id, h.market_value) for h in detail.portfolio.holdings] == [("BTC", Decimal("200.00"))]
    assert [o.order_id for o in detail.open_orders] == [pending.order_id]
    assert len(detail.ledger) == 1 and detail.ledger_total == 2
    assert [s.ip for s in detail.sessions] == ["203.0.113.5"]
    assert {e.event_type for e in detail.audit} == {"user_registered", "login_ok"} and detail.audit_total == 2
    assert detail.login_blocked_until is None
    with pytest.raises(NotFound):
        admin.user_detail(ctx, "nobody_01")
    with pytest.raises(ValidationFailed) as err:
        admin.user_detail(ctx, "x")
    assert err.value.field == "username"


def test_disable_revokes_every_session_at_once(ctx: AdminContext, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror_on(monkeypatch)
    auth.register(user_payload("bob_0001"))
    tokens = [auth.login("bob_0001", STRONG_PASSWORD).access_token for _ in range(2)]
    result = admin.disable_user(ctx, "bob_0001", "  chargeback\nfraud ")
    assert result.revoked_sessions == 2 and result.user.is_active is False
    assert open_sessions("bob_0001") == 0
    for token in tokens:
        with pytest.raises(AuthenticationFailed):
            auth.authenticate(token)
    with pytest.raises(AuthenticationFailed):
        auth.login("bob_0001", STRONG_PASSWORD)  # disabled: cannot log in again
    [row] = audit_rows("admin_user_disabled")
    assert row["actor"] == "admin_01" and row["username"] == "bob_0001" and row["target"] == "bob_0001"
    assert row["reason"] == "chargeback fraud" and row["ip"] == "192.0.2.1" and row["request_id"] == "r-1"
    assert row["before"] == {"is_active": True} and row["after"] == {"is_active": False}
    assert row["revoked_sessions"] == 2
    assert ("user", "bob_0001") in outbox_entities()
    with pytest.raises(Conflict):
        admin.disable_user(ctx, "bob_0001", "again")
    enabled = admin.enable_user(ctx, "bob_0001", "cleared")
    assert enabled.user.is_active is True and audit_rows("admin_user_enabled")[0]["after"] == {"is_active": True}
    assert auth.login("bob_0001", STRONG_PASSWORD).access_token


def test_sign_out_everywhere(ctx: AdminContext) -> None:
    auth.register(user_payload("bob_0001"))
    for _ in range(3):
        auth.login("bob_0001", STRONG_PASSWORD)
    assert admin.sign_out_everywhere(ctx, "bob_0001", "lost laptop").revoked_sessions == 3
    assert open_sessions("bob_0001") == 0
    assert audit_rows("admin_signed_out")[0]["before"] == {"open_sessions": 3}
    assert auth.login("bob_0001", STRONG_PASSWORD).access_token  # may log in again


def test_the_last_active_admin_can_be_neither_demoted_nor_disabled(ctx: AdminContext) -> None:
    with pytest.raises(BusinessRuleViolation, match="last active admin"):
        admin.change_role(ctx, "admin_01", "customer", "step down")
    with pytest.raises(BusinessRuleViolation, match="last active admin"):
        admin.disable_user(ctx, "admin_01", "leaving")
    make_user("bob_0001")
    promoted = admin.change_role(ctx, "bob_0001", "admin", "co-teacher")
    assert promoted.user.role == "admin" and promoted.changed
    row = audit_rows("admin_role_changed")[0]
    assert row["before"] == {"role": "customer"} and row["after"] == {"role": "admin"}
    same = admin.change_role(ctx, "bob_0001", "admin", "again")
    assert same.changed is False and len(audit_rows("admin_role_changed")) == 1
    admin.disable_user(ctx, "bob_0001", "test")  # two admins: one may go
    with pytest.raises(BusinessRuleViolation):  # a disabled admin does not count
        admin.change_role(ctx, "admin_01", "customer", "step down")
    admin.enable_user(ctx, "bob_0001", "back")
    assert admin.change_role(ctx, "admin_01", "customer", "step down").user.role == "customer"
    with read_session() as session:
        roles = {u.username: u.role for u in session.exec(select(User)).all()}
    assert roles == {"admin_01": "customer", "bob_0001": "admin"}
    with pytest.raises(ValidationFailed) as err:
        admin.change_role(ctx, "bob_0001", "root", "x")
    assert err.value.field == "role"


def test_clear_login_throttling(ctx: AdminContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_LOGIN_MAX_FAILURES", "2")
    monkeypatch.setenv("CNOP_LOGIN_IP_MAX_FAILURES", "50")
    reset_settings()
    auth.register(user_payload("bob_0001"))
    auth.register(user_payload("eve_0001"))
    for ip in ("203.0.113.1", "203.0.113.2"):
        for _ in range(2):
            with pytest.raises(AuthenticationFailed):
                auth.login("bob_0001", WRONG, ip=ip)
        with pytest.raises((AuthenticationFailed, RateLimited)):
            auth.login("bob_0001", WRONG, ip=ip)
    with pytest.raises(AuthenticationFailed):
        auth.login("eve_0001", WRONG, ip="203.0.113.1")
    with pytest.raises(RateLimited):
        auth.login("bob_0001", STRONG_PASSWORD, ip="203.0.113.1")
    assert admin.user_detail(ctx, "bob_0001").login_blocked_until is not None
    result = admin.clear_login_throttling(ctx, "bob_0001", "locked out before the exam")
    assert result.cleared_counters == 2
    assert auth.login("bob_0001", STRONG_PASSWORD, ip="203.0.113.1").access_token
    assert auth.login("bob_0001", STRONG_PASSWORD, ip="203.0.113.2").access_token
    with read_session() as session:
        keys = {r.key for r in session.exec(select(LoginThrottle)).all()}
    # The per-IP counters and the other user's counter stay.
    assert keys == {
        throttle.rules.ip_key("203.0.113.1"),
        throttle.rules.ip_key("203.0.113.2"),
        throttle.rules.user_ip_key("eve_0001", "203.0.113.1"),
    }
    row = audit_rows("admin_throttle_cleared")[0]
    assert row["before"] == {"throttle_counters": 2} and row["reason"] == "locked out before the exam"


def test_cash_adjustments(ctx: AdminContext, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror_on(monkeypatch)
    make_user("bob_0001", "100")
    limit("bob_0001", "buy", "BTC", "0.5", "80")  # holds 40.00
    credit = admin.adjust_cash(ctx, "bob_0001", "25.50", "prize")
    assert credit.entry.transaction_type == "system_adjustment" and credit.entry.amount == Decimal("25.50")
    assert credit.entry.balance_after == Decimal("125.50") and credit.user.cash == Decimal("125.50")
    assert credit.entry.description == "Adjustment: prize"
    debit = admin.adjust_cash(ctx, "bob_0001", "-85.50", "correction")
    assert debit.user.cash == Decimal("40.00") and debit.user.available_cash == 0
    with pytest.raises(BusinessRuleViolation, match="short by") as err:
        admin.adjust_cash(ctx, "bob_0001", "-0.01", "below the hold")
    assert err.value.field == "amount"
    assert account_of("bob_0001").cash == Decimal("40.00")
    rows = audit_rows("admin_cash_adjusted")
    assert [r["amount"] for r in rows] == ["25.50", "-85.50"]
    assert rows[1]["before"] == {"cash": "125.50", "held_cash": "40.00"}
    assert rows[1]["after"] == {"cash": "40.00", "held_cash": "40.00"}
    assert rows[1]["transaction_id"] == debit.entry.transaction_id
    assert ("ledger", debit.entry.transaction_id) in outbox_entities()
    for bad in ("0", "1.001", "2000000", "x"):
        with pytest.raises(ValidationFailed):
            admin.adjust_cash(ctx, "bob_0001", bad, "r")
    with pytest.raises(ValidationFailed) as err:
        admin.adjust_cash(ctx, "bob_0001", "1", " ")
    assert err.value.field == "reason"
    check_invariants()
    assert admin.verify_ledger().ok


ACTIONS: dict[str, Callable[[AdminContext, UnitOfWork | None], object]] = {
    "disable": lambda c, u: admin.disable_user(c, "bob_0001", "r", uow=u),
    "sign_out": lambda c, u: admin.sign_out_everywhere(c, "bob_0001", "r", uow=u),
    "role": lambda c, u: admin.change_role(c, "bob_0001", "admin", "r", uow=u),
    "throttle": lambda c, u: admin.clear_login_throttling(c, "bob_0001", "r", uow=u),
    "adjust": lambda c, u: admin.adjust_cash(c, "bob_0001", "5", "r", uow=u),
    "asset": lambda c, u: admin.set_trading(c, "BTC", False, "r", uow=u),
    "cancel": lambda c, u: admin.cancel_order(c, _pending_order(), "r", uow=u),
}


def _pending_order() -> str:
    return trading.list_open_orders("bob_0001")[0].order_id


def _state() -> tuple[object, ...]:
    with read_session() as session:
        user = session.exec(select(User).where(User.username == "bob_0001")).one()
        account = session.get(Account, "bob_0001")
        entries = len(session.exec(select(LedgerEntry)).all())
    assert account is not None
    return (user.is_active, user.role, account.cash, account.held, entries, open_sessions("bob_0001"))


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_the_audit_row_commits_with_the_change_or_not_at_all(
    ctx: AdminContext, action: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth.register(user_payload("bob_0001"))
    auth.login("bob_0001", STRONG_PASSWORD)
    fund("bob_0001", "100")
    limit("bob_0001", "buy", "BTC", "0.1", "50")
    before, audited = _state(), len(audit_rows())
    with UnitOfWork() as uow:  # not committed: neither the change nor its audit row stays
        ACTIONS[action](ctx, uow)
    assert _state() == before and len(audit_rows()) == audited
    assert trading.list_open_orders("bob_0001") and market.get_asset("BTC")["is_active"]

    def failing_record(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit store down")

    with monkeypatch.context() as patch:
        patch.setattr(audit, "record", failing_record)
        with pytest.raises(RuntimeError):
            ACTIONS[action](ctx, None)  # the audit row fails: the change is rolled back too
    assert _state() == before and trading.list_open_orders("bob_0001") and market.get_asset("BTC")["is_active"]
    ACTIONS[action](ctx, None)
    assert len(audit_rows()) == audited + 1
    assert audit_rows()[-1]["event_type"].startswith("admin_")


# ---------------------------------------------------------------- assets and prices


def test_assets_list_and_trading_switch(ctx: AdminContext, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror_on(monkeypatch)
    make_user("bob_0001", "1000")
    buy("bob_0001", "BTC", "1")
    resting = limit("bob_0001", "sell", "BTC", "1", "150")
    assets = {a.asset_id: a for a in admin.list_assets(ctx)}
    assert set(assets) == {"BTC", "ETH"} and assets["BTC"].open_orders == 1 and assets["ETH"].open_orders == 0
    assert assets["BTC"].price_usd == Decimal("100") and assets["BTC"].stale is False
    version = market.market_version()
    change = admin.set_trading(ctx, "btc", False, "exchange halted")
    assert change.changed and change.asset.is_active is False and change.asset.open_orders == 1
    assert market.market_version() == version + 1  # every process rebuilds its market rows
    assert ("asset", "BTC") in outbox_entities()
    row = audit_rows("admin_asset_disabled")[0]
    assert row["target"] == "BTC" and row["username"] is None and row["open_orders"] == 1
    assert [a.asset_id for a in admin.list_assets(ctx, active=False)] == ["BTC"]
    with pytest.raises(BusinessRuleViolation, match="not available for trading"):
        buy("bob_0001", "BTC", "1")
    set_price("BTC", "200")  # the price crosses the resting sell's limit...
    assert trading.match_limit_orders() == 0  # ...but it stays pending while trading is off
    assert trading.get_order("bob_0001", resting.order_id).status == "pending"
    again = admin.set_trading(ctx, "BTC", False, "still halted")
    assert again.changed is False and len(audit_rows("admin_asset_disabled")) == 1
    admin.set_trading(ctx, "BTC", True, "reopened")
    assert trading.match_limit_orders() == 1
    assert trading.get_order("bob_0001", resting.order_id).status == "completed"
    with pytest.raises(NotFound):
        admin.set_trading(ctx, "NOPE", True, "r")
    with pytest.raises(ValidationFailed) as err:
        admin.set_trading(ctx, "BTC", "yes", "r")
    assert err.value.field == "is_active"


def test_refresh_now_honours_the_lease(ctx: AdminContext) -> None:
    market.seed_from_snapshot()
    result = admin.refresh_prices_now(ctx, "new coins listed", scheduler.run_refresh_once)
    assert result.outcome == "ok" and result.stored > 0
    assert audit_rows("admin_prices_refreshed")[-1]["after"]["outcome"] == "ok"
    assert leases.try_acquire(scheduler.LEASE_NAME, 60, holder="another-process")
    try:
        busy = admin.refresh_prices_now(ctx, "again", scheduler.run_refresh_once)
    finally:
        leases.release(scheduler.LEASE_NAME, holder="another-process")
    assert busy.outcome == "busy"
    row = audit_rows("admin_prices_refreshed")[-1]
    assert row["after"]["outcome"] == "busy" and row["reason"] == "again"
    fake = RefreshResult(outcome="breaker_open", source="coingecko", error="circuit open")
    assert admin.refresh_prices_now(ctx, "r", lambda: fake).outcome == "breaker_open"
    assert audit_rows("admin_prices_refreshed")[-1]["error"] == "circuit open"


# ---------------------------------------------------------------- orders


def test_every_users_orders_and_cancel_on_their_behalf(ctx: AdminContext, monkeypatch: pytest.MonkeyPatch) -> None:
    make_user("bob_0001", "1000")
    make_user("eve_0001", "1000")
    buy("bob_0001", "BTC", "1")
    bob_limit = limit("bob_0001", "buy", "ETH", "2", "5")
    eve_limit = limit("eve_0001", "buy", "BTC", "1", "50")
    assert admin.list_orders(ctx).total == 3
    assert [o.order_id for o in admin.list_orders(ctx, username="eve_0001").rows] == [eve_limit.order_id]
    assert admin.list_orders(ctx, asset_id="btc").total == 2
    assert admin.list_orders(ctx, order_type="limit_buy", status="pending").total == 2
    assert admin.list_orders(ctx, status="completed").rows[0].username == "bob_0001"
    today = utcnow().date().isoformat()
    assert admin.list_orders(ctx, since=today, until=today).total == 3
    assert admin.list_orders(ctx, until="2000-01-01").total == 0
    page = admin.list_orders(ctx, limit=2)
    assert len(page.rows) == 2 and page.total == 3
    for bad, field in (
        ({"status": "open"}, "status"),
        ({"order_type": "stop"}, "order_type"),
        ({"since": "x"}, "since"),
    ):
        with pytest.raises(ValidationFailed) as err:
            admin.list_orders(ctx, **bad)  # type: ignore[arg-type]
        assert err.value.field == field
    mirror_on(monkeypatch)
    cancelled = admin.cancel_order(ctx, bob_limit.order_id, "duplicate order")
    assert cancelled.status == "cancelled" and account_of("bob_0001").held == 0
    row = audit_rows("admin_order_cancelled")[0]
    assert row["username"] == "bob_0001" and row["target"] == bob_limit.order_id
    assert row["before"] == {"status": "pending"} and row["after"] == {"status": "cancelled"}
    assert ("order", bob_limit.order_id) in outbox_entities() and ("balance", "bob_0001") in outbox_entities()
    with pytest.raises(Conflict):
        admin.cancel_order(ctx, bob_limit.order_id, "again")
    with pytest.raises(NotFound):
        admin.cancel_order(ctx, "missing", "r")
    check_invariants()


# ---------------------------------------------------------------- audit log


def test_audit_log_filters_and_csv(ctx: AdminContext) -> None:
    make_user("bob_0001", "100")
    admin.adjust_cash(ctx, "bob_0001", "1", "=HYPERLINK(evil)")
    admin.sign_out_everywhere(ctx, "bob_0001", "r2")
    everything = admin.search_audit(ctx, admin.audit_filters())
    assert everything.total == 3  # the admin's registration, then the two actions
    assert [e.event_type for e in everything.rows] == ["admin_signed_out", "admin_cash_adjusted", "user_registered"]
    by_actor = admin.search_audit(ctx, admin.audit_filters(actor="admin_01", username="bob_0001"))
    assert by_actor.total == 2
    kind = admin.search_audit(ctx, admin.audit_filters(event_type="admin_cash_adjusted"))
    assert kind.rows[0].detail["reason"] == "=HYPERLINK(evil)"
    today = utcnow().date().isoformat()
    assert admin.search_audit(ctx, admin.audit_filters(since=today, until=today)).total == 3
    assert admin.search_audit(ctx, admin.audit_filters(until="2000-01-01")).total == 0
    assert admin.search_audit(ctx, admin.audit_filters(), limit=1, offset=1).rows[0].event_type == "admin_cash_adjusted"
    assert admin.event_types(ctx) == ["admin_cash_adjusted", "admin_signed_out", "user_registered"]
    lines = list(admin.audit_csv(ctx, admin.audit_filters(username="bob_0001")))
    assert lines[0] == "id,at,event_type,username,actor,ip,user_agent,request_id,target,reason,detail\n"
    assert len(lines) == 3 and "admin_cash_adjusted" in lines[1]  # oldest first
    assert ",'=HYPERLINK(evil)," in lines[1]  # no formula for spreadsheets
    with pytest.raises(ValidationFailed) as err:
        admin.audit_filters(actor="x")
    assert err.value.field == "actor"


def test_csv_streams_in_batches(ctx: AdminContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cnop_app.services.admin.audit_log.CSV_BATCH", 2)
    make_user("bob_0001", "100")
    for i in range(5):
        admin.adjust_cash(ctx, "bob_0001", "1", f"r{i}")
    lines = list(admin.audit_csv(ctx, admin.audit_filters(event_type="admin_cash_adjusted")))
    assert [line.split(",")[9] for line in lines[1:]] == ["r0", "r1", "r2", "r3", "r4"]


# ---------------------------------------------------------------- overview and integrity


def test_system_overview(ctx: AdminContext) -> None:
    auth.register(user_payload("bob_0001"))
    auth.login("bob_0001", STRONG_PASSWORD)
    auth.login("bob_0001", STRONG_PASSWORD)
    fund("bob_0001", "1000")
    buy("bob_0001", "BTC", "1.5")
    limit("bob_0001", "buy", "ETH", "1", "5")
    admin_system.clear_recent_errors()
    get_logger("test").error("refresh exploded", exc_info=ValueError("boom"))
    overview = admin.system_overview(ctx, due_at=scheduler.due_at)
    assert overview.users.total == 2 and overview.users.new_today == 2 and overview.users.admins == 1
    assert overview.users.signed_in == 1 and overview.open_sessions == 2
    assert overview.orders.today == 2 and overview.orders.fills_today == 1
    assert overview.orders.volume_today == Decimal("150.00") and overview.orders.open_limit_orders == 1
    assert overview.price_feed["source"] == "snapshot" and overview.price_feed["next_refresh_at"] is not None
    assert overview.mirror == {"status": "ok", "enabled": False}
    assert overview.database.backend in ("sqlite", "postgresql") and overview.database.size_bytes > 0
    assert overview.recent_errors[0].message == "refresh exploded" and overview.recent_errors[0].error == "ValueError"
    assert overview.integrity is not None and overview.integrity.ok and overview.integrity.accounts == 2
    assert admin.system_overview(ctx, include_integrity=False).integrity is None


def test_integrity_check_finds_every_tampered_figure(ctx: AdminContext) -> None:
    make_user("bob_0001", "1000")
    buy("bob_0001", "BTC", "2")
    limit("bob_0001", "sell", "BTC", "0.5", "300")
    limit("bob_0001", "buy", "ETH", "1", "5")
    report = admin.verify_ledger()
    assert report.ok and report.fills == 1 and report.pending_orders == 2 and report.ledger_entries == 2
    out = io.StringIO()
    assert manage.verify(out) == 0 and out.getvalue().startswith("OK")
    assert verify_ledger_cli().returncode == 0
    with write_session() as session:
        account = session.get(Account, "bob_0001")
        holding = session.get(Holding, ("bob_0001", "BTC"))
        assert account is not None and holding is not None
        account.cash += Decimal("0.01")
        account.held = Decimal(0)
        holding.quantity = Decimal("3")
        holding.held_quantity = Decimal(0)
        holding.average_cost = Decimal("99")
        holding.realized_pnl = Decimal("1")
        first = session.exec(select(LedgerEntry).order_by(LedgerEntry.id)).first()  # type: ignore[arg-type]
        assert first is not None
        first.balance_after = Decimal("999")
        session.add_all([account, holding, first])
        session.add(Holding(username="bob_0001", asset_id="ETH", quantity=Decimal("1")))
    report = admin.verify_ledger()
    found = {(d.asset_id, d.figure) for d in report.differences}
    assert found == {
        (None, "cash"),
        (None, "held_cash"),
        (None, "balance_after"),
        ("BTC", "quantity"),
        ("BTC", "held_quantity"),
        ("BTC", "average_cost"),
        ("BTC", "realized_pnl"),
        ("ETH", "quantity"),
    }
    cash = next(d for d in report.differences if d.figure == "cash")
    assert cash.describe() == "bob_0001: cash stored 800.01, rebuilt 800"
    out = io.StringIO()
    assert manage.verify(out) == 1
    text = out.getvalue()
    assert "bob_0001/BTC: quantity stored 3, rebuilt 2" in text and "8 difference(s)" in text
    run = verify_ledger_cli()
    assert run.returncode == 1 and run.stdout == text


def verify_ledger_cli() -> subprocess.CompletedProcess[str]:
    """`python -m cnop_app.manage verify-ledger` on this test's database (a separate process: it
    configures logging, which must not change this process's loggers)."""
    return subprocess.run(
        [sys.executable, "-m", "cnop_app.manage", "verify-ledger"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_two_admins_demoting_each_other_at_once_leave_one(env: str) -> None:
    make_admin("admin_02")
    contexts = {"admin_01": admin_ctx("admin_01"), "admin_02": admin_ctx("admin_02")}
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def demote(actor: str, target: str) -> None:
        start.wait()
        try:
            admin.change_role(contexts[actor], target, "customer", "coup")
            outcomes[actor] = "ok"
        except BusinessRuleViolation:
            outcomes[actor] = "refused"

    threads = [
        threading.Thread(target=demote, args=("admin_01", "admin_02")),
        threading.Thread(target=demote, args=("admin_02", "admin_01")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values()) == ["ok", "refused"]
    with read_session() as session:
        admins = session.exec(select(User.username).where(User.role == "admin")).all()
    assert len(admins) == 1
