"""Market service on a real SQLite database: seeding, storing refreshes, fallback, sources, history, activity."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from cnop_app.config import reset_settings
from cnop_app.db import read_session, write_session
from cnop_app.domain.errors import NotFound, ValidationFailed
from cnop_app.models import Asset, KeyValue, Outbox, PriceTick
from cnop_app.services import activity, market
from cnop_app.services.market import status as market_status
from tests.support.coingecko_server import FakeCoinGecko, Reply, fake_coingecko, recorded_coins

__all__ = ["fake_coingecko"]


def count(model: type, *where: object) -> int:
    with read_session() as session:
        query = select(func.count()).select_from(model)
        for clause in where:
            query = query.where(clause)
        return session.exec(query).one()


def asset(asset_id: str) -> Asset:
    with read_session() as session:
        row = session.get(Asset, asset_id)
    assert row is not None
    return row


def test_seed_from_snapshot_fills_an_empty_catalogue_once(cnop_env: Path) -> None:
    added = market.seed_from_snapshot()
    assert added == len(recorded_coins()) >= 50
    btc = asset("BTC")
    assert btc.is_active and btc.market_cap_rank == 1 and btc.source == "snapshot"
    assert btc.price_usd is not None and btc.circulating_supply is not None and btc.market_cap is not None
    # Consistent figures: market cap = price x circulating supply (to within rounding).
    assert abs(btc.market_cap - btc.price_usd * btc.circulating_supply) / btc.market_cap < Decimal("0.001")
    assert btc.price_change_percentage_7d is not None and btc.price_change_percentage_30d is not None
    assert len(json.loads(btc.sparkline_7d)) == 168
    assert asset("USDT").category == "stablecoin"
    # History from the sparkline (168 hourly points) plus the current tick.
    assert count(PriceTick, PriceTick.asset_id == "BTC") == 169
    assert market.seed_from_snapshot() == 0
    assert count(Asset) == added
    assert market.market_status()["as_of"] is not None


def test_coingecko_refresh_stores_prices_in_one_go(fake_coingecko: FakeCoinGecko) -> None:
    result = market.refresh_prices()
    assert result.outcome == "ok" and result.stored == len(recorded_coins()) and result.stored_prices
    assert fake_coingecko.hits == 1  # seeding needs no network; one call per refresh
    btc = asset("BTC")
    assert btc.source == "coingecko"
    ticks_before = count(PriceTick, PriceTick.asset_id == "BTC")
    coins = recorded_coins()
    coins[0]["current_price"] = 101234.5
    fake_coingecko.push(Reply(coins=coins))
    second = market.refresh_prices()
    assert second.outcome == "ok" and second.version == result.version + 1
    assert second.changed == 1  # only BTC moved
    assert asset("BTC").price_usd == Decimal("101234.5")
    assert count(PriceTick, PriceTick.asset_id == "BTC") == ticks_before + 1
    assert market.latest_prices()["BTC"] == Decimal("101234.5")
    status = market.market_status()
    assert status["last_outcome"] == "ok" and not status["stale"] and status["breaker"]["state"] == "closed"
    assert fake_coingecko.hits == 2


def test_failed_feed_keeps_last_good_prices_and_reports_staleness(fake_coingecko: FakeCoinGecko) -> None:
    assert market.refresh_prices().outcome == "ok"
    good = market.latest_prices()
    ticks = count(PriceTick)
    fake_coingecko.push(Reply(status=500, body=b"internal error"))
    result = market.refresh_prices()
    assert result.outcome == "failed" and "HTTP 500" in (result.error or "") and not result.stored_prices
    with read_session() as session:
        stored = dict(session.exec(select(Asset.id, Asset.price_usd)).all())
    assert stored == good and count(PriceTick) == ticks
    status = market.market_status()
    assert status["stale"] and status["consecutive_failures"] == 1 and status["last_outcome"] == "failed"
    assert status["retry_at"] is not None
    listing = market.list_assets(limit=5)
    assert listing["data"][0]["asset_id"] == "BTC" and listing["data"][0]["stale"] is True
    assert listing["data"][0]["price_usd"] == good["BTC"]


def test_garbage_and_partial_feed_never_corrupt_prices(fake_coingecko: FakeCoinGecko) -> None:
    assert market.refresh_prices().outcome == "ok"
    before = market.latest_prices()
    for reply in (Reply(body=b"<html>oops"), Reply(truncate=True)):
        time.sleep(0.6)  # past the back-off delay of the previous failure
        fake_coingecko.push(reply)
        assert market.refresh_prices().outcome == "failed"
        assert market.latest_prices() == before
    # Partial data: BTC has a negative price, ETH is missing. Both keep their last good price;
    # ETH (not in the refresh) is flagged stale on its own.
    time.sleep(1.1)
    coins = [c for c in recorded_coins() if c["symbol"] != "eth"]
    coins[0]["current_price"] = -1
    coins[2]["current_price"] = 3.5
    fake_coingecko.push(Reply(coins=coins))
    result = market.refresh_prices()
    assert result.outcome == "ok" and result.skipped == 1
    after = market.latest_prices()
    assert after["BTC"] == before["BTC"] and after["ETH"] == before["ETH"]
    assert after[coins[2]["symbol"].upper()] == Decimal("3.5")
    items = {a["asset_id"]: a for a in market.list_assets(limit=250)["data"]}
    assert items["ETH"]["stale"] is True and items["SOL"]["stale"] is False


def test_snapshot_source_needs_no_network(cnop_env: Path) -> None:
    result = market.refresh_prices()
    assert result.outcome == "ok" and result.source == "snapshot"
    assert asset("BTC").price_usd == Decimal(repr(recorded_coins()[0]["current_price"]))
    assert market.market_status()["stale"] is False


def test_simulated_source_walks_deterministically(cnop_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_MARKET_SOURCE", "simulated")
    reset_settings()
    base = {c["symbol"].upper(): Decimal(repr(c["current_price"])) for c in recorded_coins()}
    first = market.refresh_prices()
    assert first.outcome == "ok" and first.source == "simulated"
    p1 = market.latest_prices()
    market.refresh_prices()
    p2 = market.latest_prices()
    assert p1["BTC"] != base["BTC"] and p2["BTC"] != p1["BTC"]
    assert abs(p2["BTC"] / base["BTC"] - 1) < Decimal("0.1")
    assert abs(p2["USDT"] - 1) < Decimal("0.01")  # stablecoins barely move
    btc = asset("BTC")
    assert btc.source == "simulated" and isinstance(btc.price_usd, Decimal)
    assert btc.market_cap == (btc.price_usd * btc.circulating_supply).quantize(Decimal(1))
    assert json.loads(btc.sparkline_7d)[-1] == pytest.approx(json.loads(format(btc.price_usd, "f")))
    status = json.loads(_kv(market.STATUS_KEY))
    assert status["sim_step"] == 2
    # Same seed, same step, same start: the same walk (reset the step counter and prices).
    with write_session() as session:
        for row in session.exec(select(Asset)).all():
            row.price_usd = base[row.id]
            session.add(row)
        status["sim_step"] = 0
        kv = session.get(KeyValue, market.STATUS_KEY)
        assert kv is not None
        kv.value = json.dumps(status)
        session.add(kv)
    market.refresh_prices()
    assert market.latest_prices()["BTC"] == p1["BTC"]


def _kv(key: str) -> str:
    with read_session() as session:
        row = session.get(KeyValue, key)
    assert row is not None
    return row.value


def test_changed_assets_go_to_the_outbox(cnop_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_DYNAMODB_ENDPOINT", "http://127.0.0.1:1")  # mirror on: outbox records written
    monkeypatch.setenv("CNOP_MARKET_SOURCE", "simulated")
    reset_settings()
    market.seed_from_snapshot()
    seeded = count(Outbox, Outbox.entity == "asset")
    assert seeded == count(Asset)
    market.refresh_prices()
    moved = count(Outbox, Outbox.entity == "asset") - seeded
    assert 0 < moved <= count(Asset)
    with read_session() as session:
        record = session.exec(select(Outbox).where(Outbox.entity == "asset").order_by(col(Outbox.id).desc())).first()
    assert record is not None
    assert record.payload and json.loads(record.payload)["id"] == record.entity_key


def test_history_ranges(cnop_env: Path) -> None:
    market.seed_from_snapshot()
    day = market.asset_history("btc", "24h")
    week = market.asset_history("BTC", "7d")
    month = market.asset_history(" BTC ", "30d")
    assert day["asset_id"] == "BTC" and day["range"] == "24h"
    assert 20 <= len(day["points"]) <= 26 and 168 <= len(week["points"]) <= 169 and len(month["points"]) == 169
    stamps = [p["at"] for p in week["points"]]
    assert stamps == sorted(stamps)
    assert isinstance(week["points"][-1]["price"], Decimal) and week["change_percentage"] is not None
    with pytest.raises(ValidationFailed):
        market.asset_history("BTC", "1y")
    with pytest.raises(ValidationFailed):
        market.asset_history("B-TC", "24h")
    with pytest.raises(NotFound):
        market.asset_history("NOPE", "24h")


def test_list_and_detail_shapes(cnop_env: Path) -> None:
    market.seed_from_snapshot()
    listing = market.list_assets(active_only=True, limit=10)
    assert listing["total_count"] == listing["active_count"] == count(Asset)
    ranks = [a["market_cap_rank"] for a in listing["data"]]
    assert ranks == sorted(ranks) and ranks[0] == 1 and len(ranks) == 10
    with pytest.raises(ValidationFailed):
        market.list_assets(limit=0)
    detail = market.get_asset("eth")
    assert detail["availability_status"] == "available" and detail["max_supply"] is None
    assert len(detail["sparkline_7d"]) == 168
    with pytest.raises(NotFound):
        market.get_asset("ZZZZ")


def test_market_table_read_matches_each_assets_summary_and_sparkline(any_db: str) -> None:
    """`market_table` (each live push's read: Core rows of only the columns it needs, cached sparkline
    parsing) gives each asset's list item exactly as the API's list reads it through the ORM, and the
    detail's sparkline, inactive assets included, on SQLite and PostgreSQL."""
    market.seed_from_snapshot()
    with write_session() as session:
        retired = session.get(Asset, "USDT")
        assert retired is not None
        retired.is_active = False
        session.add(retired)
    every = market.market_table()
    listed = market.list_assets(False, 250)["data"]
    assert [a["asset_id"] for a in every] == [a["asset_id"] for a in listed]
    for item, summary in zip(every, listed, strict=True):
        sparkline = item.pop("sparkline_7d")
        assert sparkline == market.get_asset(item["asset_id"])["sparkline_7d"]
        assert len(sparkline) == 168 and all(isinstance(point, Decimal) for point in sparkline)
        # The price's age is counted from each read's own clock.
        assert abs(summary.pop("price_age_seconds") - item.pop("price_age_seconds")) <= 2
        assert item == summary
    assert next(a for a in every if a["asset_id"] == "USDT")["is_active"] is False
    # The parsed sparkline is shared between reads; each caller still gets a list of its own.
    market.market_table()[0]["sparkline_7d"].clear()
    assert len(market.market_table()[0]["sparkline_7d"]) == 168


def test_price_cache_follows_other_processes(cnop_env: Path) -> None:
    market.seed_from_snapshot()
    assert market.latest_prices()["BTC"] == asset("BTC").price_usd
    # Another process stores a price and bumps the version: this process picks it up.
    with write_session() as session:
        row = session.get(Asset, "BTC")
        assert row is not None
        row.price_usd = Decimal("12345.67")
        session.add(row)
        kv = session.get(KeyValue, market.STATUS_KEY)
        assert kv is not None
        status = json.loads(kv.value)
        status["version"] += 1
        kv.value = json.dumps(status)
        session.add(kv)
    assert market.reload_prices_if_changed() is True
    assert market.latest_prices()["BTC"] == Decimal("12345.67")
    assert market.reload_prices_if_changed() is False


def test_activity_windows_and_idle_threshold(cnop_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_IDLE_AFTER_SECONDS", "1")
    reset_settings()
    activity.reset()
    assert not activity.is_active()
    activity.record_request("GET", "/health", 200, 1000)  # probes are not activity
    activity.record_request("GET", "/metrics", 200, 1000)
    assert not activity.is_active()
    for ms in (10, 20, 30, 400):
        activity.record_request("GET", "/api/v1/inventory/assets/{asset_id}", 200, ms * 1000)
    activity.record_request("POST", "/api/v1/orders", 500, 50_000)
    activity.record_ui_event("page_view", "alice_01")
    activity.record_ui_event("order", "bob_0001")
    activity.record_ui_event("something-unbounded-123", None)
    assert activity.is_active()
    snap = activity.snapshot()
    route = snap["routes"]["GET /api/v1/inventory/assets/{asset_id}"]
    assert route["count"] == 4 and route["p50_ms"] == 20.0 and route["p95_ms"] == 400.0
    assert snap["routes"]["POST /api/v1/orders"]["errors"] == 1
    assert snap["ui_events"] == {"page_view": 1, "order": 1, "other": 1}
    assert snap["active_users"] == 2 and snap["mode"] == "active"
    time.sleep(1.1)
    assert not activity.is_active() and activity.snapshot()["mode"] == "idle"
    activity.reset()


def test_activity_is_shared_between_processes(cnop_env: Path) -> None:
    activity.reset()
    activity.record_ui_event("page_view", "alice_01")
    assert activity.sync_shared() is True  # published to the database
    activity.reset()  # "another process": no local activity
    assert not activity.is_active()
    assert activity.sync_shared() is True  # ...but it reads what was published
    activity.reset()


def test_status_read_matches_the_locked_read_and_survives_a_garbled_record(any_db: str) -> None:
    """`load_status` (a Core read, every push's new table) gives what a refresh's locked ORM read gives;
    a missing or garbled record reads as empty, never as an error."""
    assert market.load_status() == {} and market.market_version() == 0
    market.seed_from_snapshot()
    with write_session() as session:
        locked = market_status.read_status(session, lock=True)
    assert market.load_status() == locked and locked["version"] == market.market_version() >= 1
    for garbled in ("{not json", "[1, 2]", ""):
        with write_session() as session:
            row = session.get(KeyValue, market.STATUS_KEY)
            assert row is not None
            row.value = garbled
            session.add(row)
        assert market.load_status() == {} and market.market_version() == 0
