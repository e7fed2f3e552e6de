"""The DynamoDB mirror against moto's real server process (tests/support/moto_server.py)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlmodel import select, update

from cnop_app.config import reset_settings
from cnop_app.db import read_session, write_session
from cnop_app.models import Asset, Lease, Outbox
from cnop_app.observability.metrics import REGISTRY
from cnop_app.services import accounts, auth, health, leases, market, mirror, outbox, trading
from cnop_app.services.mirror import drainer, tools
from cnop_app.services.mirror.cli import main as mirror_cli
from cnop_app.services.mirror.process import DrainerProcess
from tests.support.helpers import user_payload
from tests.support.moto_server import MotoServer, moto_server  # noqa: F401  (fixture)

DEADLINE_SECONDS = 60


@pytest.fixture
def mirror_env(cnop_env: Path, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:  # noqa: F811
    """Mirror on, pointed at a fresh moto server; short back-off so retries happen within the test."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CNOP_DYNAMODB_ENDPOINT", moto_server.endpoint)
    monkeypatch.setenv("CNOP_DYNAMODB_TABLE_PREFIX", "t-")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setattr(drainer, "RETRY_BASE_MS", 50)
    monkeypatch.setattr(drainer, "RETRY_MAX_MS", 500)
    monkeypatch.setattr(drainer, "POLL_MS", 100)
    reset_settings()
    mirror.reset_client()
    assert sorted(mirror.create_tables()) == ["t-inventory", "t-orders", "t-users"]
    yield moto_server
    mirror.reset_client()


# ---------------------------------------------------------------- helpers


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def depth() -> int:
    with read_session() as session:
        return len(session.exec(select(Outbox.id).where(Outbox.processed_at.is_(None))).all())  # type: ignore[union-attr]


def drain_all() -> None:
    """Drain until the outbox is empty (rows in back-off become due after a short wait)."""

    def drained() -> bool:
        mirror.drain_once()
        return depth() == 0

    wait_for(drained, "the outbox to drain")


def drift_balance(table: str, username: str) -> None:
    """Change a mirrored balance in DynamoDB behind SQL's back: a real difference for `verify`."""
    mirror.get_client().update_item(
        TableName=table,
        Key={"Pk": {"S": username}, "Sk": {"S": "BALANCE"}},
        UpdateExpression="SET current_balance = :v",
        ExpressionAttributeValues={":v": {"N": "1"}},
    )


def assert_identical() -> mirror.VerifyResult:
    result = mirror.verify()
    assert result.differences == []
    assert result.outbox_depth == 0
    return result


@contextmanager
def running_drainer() -> Iterator[None]:
    """The app's lifespan task, entered and left as the app's start-up and shutdown would."""
    runner = asyncio.Runner()
    lifespan = mirror.mirror_lifespan()
    runner.run(lifespan.__aenter__())
    try:
        yield
    finally:
        runner.run(lifespan.__aexit__(None, None, None))
        runner.close()


def failed_count() -> float:
    return REGISTRY.get_sample_value("cnop_mirror_items_failed_total", {"table": "users"}) or 0.0


def seed_asset(asset_id: str = "BTC", price: str = "50000") -> None:
    with write_session() as session:
        asset = Asset(
            id=asset_id, name=f"{asset_id} coin", price_usd=Decimal(price), market_cap_rank=1, source="simulated"
        )
        session.add(asset)
        session.flush()
        outbox.emit(session, "asset", asset.id, asset)


def refresh_price(asset_id: str, price: str) -> int:
    """A price refresh as the market job does it: store the price, then match limit orders."""
    with write_session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        asset.price_usd = Decimal(price)
        asset.last_updated = datetime.now(timezone.utc)
        asset.updated_at = asset.last_updated
        session.add(asset)
        outbox.emit(session, "asset", asset.id, asset)
    return trading.match_limit_orders()


def scripted_session(prefix: str, *, with_asset: bool = True) -> None:
    """Registrations, profile change, deposits, withdrawals, market and limit orders, a cancel, a refresh."""
    names = [f"{prefix}_alice", f"{prefix}_bob"]
    for name in names:
        auth.register(user_payload(name))
        accounts.deposit(name, "5000.25")
        accounts.withdraw(name, "100.10")
    auth.update_profile(names[0], {"first_name": "Alicia", "phone": "5551234567"})
    if not with_asset:
        return
    alice, bob = names
    trading.place_order(alice, {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.05"})
    trading.place_order(alice, {"order_type": "market_sell", "asset_id": "BTC", "quantity": "0.01"})
    resting = trading.place_order(
        alice, {"order_type": "limit_sell", "asset_id": "BTC", "quantity": "0.02", "price": "90000"}
    )
    cancelled = trading.place_order(
        bob, {"order_type": "limit_buy", "asset_id": "BTC", "quantity": "0.01", "price": "30000"}
    )
    trading.place_order(bob, {"order_type": "limit_buy", "asset_id": "BTC", "quantity": "0.03", "price": "45000"})
    trading.cancel_order(bob, cancelled.order_id)
    assert refresh_price("BTC", "44000.123456789") == 1  # bob's 45000 limit buy fills
    assert resting.status == "pending"


# ---------------------------------------------------------------- tests


def test_scripted_session_is_mirrored_identically(mirror_env: MotoServer) -> None:
    seed_asset()
    scripted_session("s1")
    assert depth() > 0
    drain_all()
    result = assert_identical()
    assert result.checked > 20

    client = mirror.get_client()
    balance = client.get_item(TableName="t-users", Key={"Pk": {"S": "s1_alice"}, "Sk": {"S": "BALANCE"}})["Item"]
    assert Decimal(balance["current_balance"]["N"]) == accounts.get_balance("s1_alice").current_balance
    user = client.query(
        TableName="t-users",
        IndexName="EmailIndex",
        KeyConditionExpression="email = :e",
        ExpressionAttributeValues={":e": {"S": "s1_alice@example.com"}},
    )["Items"]
    assert [u["Sk"]["S"] for u in user] == ["USER"]
    assert user[0]["first_name"]["S"] == "Alicia"
    assert "password_hash" not in user[0]  # secrets stay in SQL unless asked for
    orders = client.query(
        TableName="t-orders",
        IndexName="UserOrdersIndex",
        KeyConditionExpression="username = :u",
        ExpressionAttributeValues={":u": {"S": "s1_bob"}},
    )["Items"]
    assert sorted(o["status"]["S"] for o in orders) == ["cancelled", "completed"]
    asset = client.get_item(TableName="t-inventory", Key={"product_id": {"S": "BTC"}})["Item"]
    assert asset["price_usd"]["N"] == "44000.123456789"  # exact, not a float
    fills = client.query(
        TableName="t-users",
        KeyConditionExpression="Pk = :p",
        ExpressionAttributeValues={":p": {"S": "ASSET_TRANS#s1_alice#BTC"}},
    )["Items"]
    assert len(fills) == 2

    # Replaying everything changes nothing: every row is already there (or newer).
    with write_session() as session:
        session.exec(update(Outbox).values(processed_at=None))  # type: ignore[call-overload]
    drain_all()
    assert_identical()


def test_password_hashes_only_with_secrets_flag(mirror_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_DYNAMODB_MIRROR_SECRETS", "true")
    reset_settings()
    auth.register(user_payload("secret_user"))
    drain_all()
    item = mirror.get_client().get_item(TableName="t-users", Key={"Pk": {"S": "secret_user"}, "Sk": {"S": "USER"}})
    assert item["Item"]["password_hash"]["S"].startswith("$argon2")
    assert_identical()


def test_outage_never_fails_a_write_and_the_mirror_catches_up(mirror_env: MotoServer) -> None:
    seed_asset()
    with running_drainer():
        scripted_session("o1")
        wait_for(lambda: depth() == 0, "the drainer to catch up")
        assert_identical()

        mirror_env.stop()  # DynamoDB goes away mid-run
        started = time.monotonic()
        scripted_session("o2")  # every write still succeeds
        for _ in range(5):
            accounts.deposit("o1_alice", "10.01")
            trading.place_order("o1_bob", {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.001"})
        writes_took = time.monotonic() - started
        assert depth() > 0
        wait_for(lambda: health.report()["components"]["dynamodb_mirror"]["status"] == "degraded", "degraded")
        report = health.report()
        assert report["components"]["dynamodb_mirror"]["failing_rows"] > 0
        assert report["components"]["dynamodb_mirror"]["last_error"]

    # DynamoDB comes back with its data. The drainer is stopped meanwhile (the app restarts, as in the
    # next test): the local server gets its data back by replaying its recorded requests after it
    # started, and a write landing during that replay would be overwritten by an older replayed one.
    # A real DynamoDB has no such window.
    mirror_env.restart()
    with running_drainer():
        wait_for(lambda: depth() == 0, "the drainer to catch up after the outage")
        assert_identical()
        wait_for(lambda: health.report()["components"]["dynamodb_mirror"]["status"] == "ok", "health ok")
    print(f"writes during the outage took {writes_took:.2f}s")


def test_app_restart_picks_up_undrained_rows(mirror_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drainer, "LEASE_TTL_SECONDS", 2.0)
    seed_asset()
    with running_drainer():
        scripted_session("r1")
        wait_for(lambda: depth() == 0, "first drain")
        mirror_env.stop()
        scripted_session("r2")
    # The app is down with undrained rows, and its old drainer crashed still holding the lease.
    assert depth() > 0
    with write_session() as session:
        expires = datetime.now(timezone.utc) + timedelta(seconds=1.5)
        session.add(Lease(name="mirror_drainer", holder="dead-host:1:x", expires_at=expires))
    mirror.reset_client()  # a new process: no cached client or lease
    assert mirror.drain_once() == 0  # exactly one drainer: not while another holds the lease
    mirror_env.restart()
    with running_drainer():
        wait_for(lambda: depth() == 0, "the new drainer to take over and drain")
        assert leases.current_holder("mirror_drainer") == leases.process_id()
    assert leases.current_holder("mirror_drainer") is None  # released at shutdown
    assert_identical()


def test_duplicate_and_out_of_order_delivery_never_regress(mirror_env: MotoServer) -> None:
    auth.register(user_payload("dup_user"))
    for amount in ("1.00", "2.00", "3.00", "4.00", "5.00"):
        accounts.deposit("dup_user", amount)
    drain_all()
    with read_session() as session:
        rows = session.exec(
            select(Outbox).where(Outbox.entity == "balance", Outbox.entity_key == "dup_user").order_by(Outbox.id)  # type: ignore[arg-type]
        ).all()
    assert len(rows) == 6
    client = mirror.get_client()
    key = {"Pk": {"S": "dup_user"}, "Sk": {"S": "BALANCE"}}

    def stored() -> tuple[str, str]:
        item = client.get_item(TableName="t-users", Key=key, ConsistentRead=True)["Item"]
        return item["current_balance"]["N"], item["mirror_seq"]["N"]

    assert stored() == ("15", str(rows[-1].id))
    # Duplicates and older rows delivered again, in any order: never applied.
    shuffled = list(rows) * 2
    random.Random(7).shuffle(shuffled)
    for row in shuffled:
        applied = mirror.apply_row(client, row.entity, row.entity_key, row.operation, json.loads(row.payload), row.id)
        assert applied is False
        assert stored() == ("15", str(rows[-1].id))
    # From scratch, out of order: only newer rows win; the newest always ends on top.
    client.delete_item(TableName="t-users", Key=key)
    for row in shuffled:
        mirror.apply_row(client, row.entity, row.entity_key, row.operation, json.loads(row.payload), row.id)
    assert stored() == ("15", str(rows[-1].id))
    # The drainer itself, fed every row again (as after a crash before marking): nothing regresses.
    with write_session() as session:
        total = session.exec(update(Outbox).values(processed_at=None)).rowcount  # type: ignore[call-overload]
    stats = mirror.drain_batch()
    assert (stats.stale, stats.mirrored, stats.failed) == (total, 0, 0)
    drain_all()
    assert_identical()


def test_throttling_is_retried_not_lost(mirror_env: MotoServer) -> None:
    client = mirror.get_client()
    injected = {"left": 7, "raised": 0}

    def throttle(**_kwargs: Any) -> None:
        if injected["left"] > 0:
            injected["left"] -= 1
            injected["raised"] += 1
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}}
            raise ClientError(error, "PutItem")  # type: ignore[arg-type]

    # The drainer writes batches (BatchWriteItem); small batches and isolating errors use PutItem.
    client.meta.events.register("before-call.dynamodb.BatchWriteItem", throttle)
    client.meta.events.register("before-call.dynamodb.PutItem", throttle)
    failed_before = failed_count()
    seed_asset()
    scripted_session("th")
    first = mirror.drain_batch()
    assert first.failed > 0
    assert "ProvisionedThroughputExceededException" in (
        health.report()["components"]["dynamodb_mirror"]["last_error"] or ""
    )
    drain_all()
    assert injected["raised"] == 7
    assert failed_count() > failed_before
    with read_session() as session:
        retried = session.exec(select(Outbox).where(Outbox.attempts > 0)).all()  # type: ignore[operator]
    assert retried and all(row.processed_at is not None for row in retried)
    assert_identical()


def test_missing_table_backs_off_then_backfill_restores(mirror_env: MotoServer) -> None:
    client = mirror.get_client()
    client.delete_table(TableName="t-orders")
    seed_asset()
    scripted_session("mt")  # writes succeed though a table is gone
    mirror.drain_once()
    status = health.report()["components"]["dynamodb_mirror"]
    assert status["status"] == "degraded"
    assert "ResourceNotFoundException" in status["last_error"]
    assert mirror.create_tables() == ["t-orders"]
    drain_all()
    assert_identical()


def test_backfill_turns_the_mirror_on_later(cnop_env: Path, moto_server: MotoServer, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setattr(tools, "RECHECK_PAUSE_SECONDS", 0)  # differences are expected below
    seed_asset()
    scripted_session("bf")  # mirror off: no outbox rows at all
    assert depth() == 0
    assert health.report()["components"]["dynamodb_mirror"] == {"status": "ok", "enabled": False}
    with running_drainer():  # a no-op while off
        pass
    assert mirror.drain_once() == 0

    monkeypatch.setenv("CNOP_DYNAMODB_ENDPOINT", moto_server.endpoint)
    reset_settings()
    mirror.reset_client()
    assert mirror_cli(["create-tables"]) == 0
    assert mirror_cli(["create-tables"]) == 0  # idempotent
    assert mirror_cli(["verify"]) == 1  # empty tables: everything is missing
    assert mirror_cli(["backfill"]) == 0
    assert mirror_cli(["verify"]) == 0
    accounts.deposit("bf_alice", "1.23")
    assert mirror_cli(["drain"]) == 0
    assert_identical()

    # verify notices a drifted item.
    drift_balance("cnop-users", "bf_bob")
    result = mirror.verify()
    assert len(result.differences) == 1 and "current_balance" in result.differences[0]
    assert mirror_cli(["verify"]) == 1
    assert mirror.backfill() > 0  # heals it
    assert_identical()
    mirror.reset_client()


def test_cli_refuses_when_off(cnop_env: Path) -> None:
    assert mirror_cli(["verify"]) == 2


def test_refreshes_that_change_no_price_keep_the_mirror_identical(any_db: str, mirror_env: MotoServer) -> None:
    """Every asset row a refresh writes reaches DynamoDB, moved price or not (its `updated_at` moves:
    it says the asset was in the last refresh). Before, unchanged assets skipped the outbox and
    `verify` found every asset older in DynamoDB than in the database."""

    market.ensure_catalogue()
    assert market.refresh_prices().outcome == "ok"  # snapshot prices: nothing moves
    auth.register(user_payload("mira_0001"))
    accounts.deposit("mira_0001", "1000")
    trading.place_order("mira_0001", {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.001"})
    assert market.refresh_prices().outcome == "ok"
    drain_all()
    result = assert_identical()
    assert result.checked > 52


def test_drainer_processes_one_per_deployment_restarted_and_taken_over(
    any_db: str, mirror_env: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drainer runs in a child of each app worker under the worker's lease id: two workers' children,
    exactly one drains; a killed child is restarted; when its worker stops, the other one takes over."""
    monkeypatch.setattr(drainer, "LEASE_TTL_SECONDS", 2.0)
    seed_asset()
    mirrored_before = REGISTRY.get_sample_value("cnop_mirror_items_mirrored_total", {"table": "users"}) or 0.0
    first = DrainerProcess()
    second = DrainerProcess(holder="other-worker:1:x")
    first.start()
    wait_for(lambda: leases.current_holder("mirror_drainer") == leases.process_id(), "the first child's lease")
    second.start()
    try:
        assert first.child is not None and second.child is not None
        scripted_session("p1")
        wait_for(lambda: depth() == 0, "the first worker's child to drain")
        assert leases.current_holder("mirror_drainer") == leases.process_id()
        # Its passes reach this process's metrics (what /metrics of the worker exposes).
        wait_for(
            lambda: (
                (REGISTRY.get_sample_value("cnop_mirror_items_mirrored_total", {"table": "users"}) or 0.0)
                > mirrored_before
            ),
            "the child's report",
        )

        killed = first.child.pid
        first.child.kill()
        wait_for(lambda: first.child is not None and first.child.pid != killed, "the killed child's restart")
        scripted_session("p2")
        # Drained by the restarted child, or by the other worker's once the lease of the killed one expired.
        wait_for(lambda: depth() == 0, "the outbox to drain after the kill")
        assert leases.current_holder("mirror_drainer") in {leases.process_id(), "other-worker:1:x"}
        assert_identical()

        first.close()  # the worker stops: its child releases the lease and exits
        assert first.child.poll() is not None
        accounts.deposit("p1_alice", "1.11")
        wait_for(lambda: depth() == 0, "the other worker's child to take over")
        assert leases.current_holder("mirror_drainer") == "other-worker:1:x"
        assert_identical()
    finally:
        first.close()
        second.close()
    assert second.child.poll() is not None
    assert leases.current_holder("mirror_drainer") is None


def test_an_items_rows_are_coalesced_and_a_malformed_row_fails_alone(mirror_env: MotoServer) -> None:
    """A batch writes each item once, as its newest row. A newest row that cannot be built fails alone:
    its item's earlier rows still reach DynamoDB, later ones wait behind it, and once it is due again a
    newer snapshot of the item supersedes it."""
    auth.register(user_payload("co_user"))
    for amount in ("1.00", "2.00", "3.00"):
        accounts.deposit("co_user", amount)
    with read_session() as session:
        good = session.exec(
            select(Outbox).where(Outbox.entity == "balance", Outbox.entity_key == "co_user").order_by(Outbox.id)  # type: ignore[arg-type]
        ).all()
        pending = len(session.exec(select(Outbox.id).where(Outbox.processed_at.is_(None))).all())  # type: ignore[union-attr]
    payload = json.loads(good[-1].payload) | {"updated_at": "not a time"}
    with write_session() as session:
        broken = Outbox(entity="balance", entity_key="co_user", operation="upsert", payload=json.dumps(payload))
        session.add(broken)
        session.flush()
        broken_id = broken.id
    client = mirror.get_client()
    key = {"Pk": {"S": "co_user"}, "Sk": {"S": "BALANCE"}}

    stats = mirror.drain_batch()
    assert (stats.failed, stats.done) == (1, pending)
    item = client.get_item(TableName="t-users", Key=key, ConsistentRead=True)["Item"]
    assert (item["mirror_seq"]["N"], item["current_balance"]["N"]) == (str(good[-1].id), "6")

    accounts.deposit("co_user", "4.00")  # a newer snapshot of the same item
    with write_session() as session:
        later = datetime.now(timezone.utc) + timedelta(hours=1)
        session.exec(update(Outbox).where(Outbox.id == broken_id).values(next_attempt_at=later))  # type: ignore[call-overload]
    stats = mirror.drain_batch()
    assert stats.failed == 0 and stats.done == 1  # the deposit's ledger row; its balance row waits
    assert client.get_item(TableName="t-users", Key=key, ConsistentRead=True)["Item"]["current_balance"]["N"] == "6"

    with write_session() as session:
        session.exec(update(Outbox).where(Outbox.id == broken_id).values(next_attempt_at=None))  # type: ignore[call-overload]
    drain_all()
    assert client.get_item(TableName="t-users", Key=key, ConsistentRead=True)["Item"]["current_balance"]["N"] == "10"
    assert_identical()


def test_verify_does_not_report_a_write_that_lands_while_it_reads(
    any_db: str, mirror_env: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify reads SQL, then scans DynamoDB; a write committed and drained in between (a price refresh
    every few seconds in a live deployment) is not a difference."""
    seed_asset()
    scripted_session("vr")
    drain_all()
    assert_identical()
    scan = tools._scan
    writes = iter(["2.00", "3.00"])

    def scan_after_a_write(client: Any, kind: str) -> Iterator[dict[str, Any]]:
        if kind == "users" and (amount := next(writes, None)) is not None:
            accounts.deposit("vr_alice", amount)  # lands after the SQL read, before the scan
            drain_all()
        yield from scan(client, kind)

    monkeypatch.setattr(tools, "_scan", scan_after_a_write)
    monkeypatch.setattr(tools, "RECHECK_PAUSE_SECONDS", 0)
    monkeypatch.setattr(tools, "RECHECK_ROUNDS", 0)
    raced = mirror.verify()  # without the re-check, the race shows
    assert raced.differences and all("vr_alice" in line for line in raced.differences)
    monkeypatch.setattr(tools, "RECHECK_ROUNDS", 4)
    assert mirror.verify().differences == []
    # A real difference stays reported through every re-check.
    drift_balance("t-users", "vr_bob")
    result = mirror.verify()
    assert len(result.differences) == 1 and "vr_bob" in result.differences[0]
