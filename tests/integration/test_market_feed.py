"""The CoinGecko client against a real local HTTP server: mapping, bad data, back-off, circuit breaker."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from cnop_app.services import coingecko
from cnop_app.services.coingecko import CircuitBreaker, CoinGeckoClient, FeedError, FeedUnavailable
from tests.support.coingecko_server import FakeCoinGecko, Reply, recorded_coins


@pytest.fixture
def server() -> Iterator[FakeCoinGecko]:
    with FakeCoinGecko() as fake:
        yield fake


@pytest.fixture
def feed_logs() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.WARNING)
    logger = logging.getLogger("cnop.coingecko")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def make_client(server: FakeCoinGecko, **breaker_args: object) -> CoinGeckoClient:
    args: dict[str, object] = {"failure_threshold": 5, "reset_seconds": 60, "backoff_base": timedelta(milliseconds=1)}
    args.update(breaker_args)
    return CoinGeckoClient(server.base_url, "demo-key", "demo", CircuitBreaker(**args), timeout_ms=2000)  # type: ignore[arg-type]


def test_maps_every_field_with_exact_decimals(server: FakeCoinGecko) -> None:
    client = make_client(server)
    page = client.fetch_markets(per_page=250)
    raw = {c["symbol"].upper(): c for c in recorded_coins()}
    assert page.skipped == 0 and len(page.coins) == len(raw)
    btc = next(c for c in page.coins if c["id"] == "BTC")
    src = raw["BTC"]
    # Every Asset market field is filled, 7d/30d and the sparkline included (the reference system lost them).
    for field in (
        "price_usd",
        "market_cap",
        "total_volume_24h",
        "high_24h",
        "low_24h",
        "price_change_24h",
        "price_change_percentage_24h",
        "price_change_percentage_7d",
        "price_change_percentage_30d",
        "circulating_supply",
        "total_supply",
        "max_supply",
        "ath",
        "ath_change_percentage",
        "atl",
        "atl_change_percentage",
    ):
        assert isinstance(btc[field], Decimal), field
    assert btc["price_usd"] == Decimal(repr(src["current_price"]))
    assert btc["price_change_percentage_7d"] == Decimal(repr(src["price_change_percentage_7d_in_currency"]))
    assert btc["price_change_percentage_30d"] == Decimal(repr(src["price_change_percentage_30d_in_currency"]))
    assert btc["market_cap_rank"] == 1 and btc["coingecko_id"] == "bitcoin" and btc["name"] == "Bitcoin"
    assert btc["ath_date"] == datetime(2025, 10, 6, 18, 57, 42, 558000, tzinfo=timezone.utc)
    assert btc["last_updated"].tzinfo is not None
    assert len(btc["sparkline_7d"]) == 168 and all(isinstance(p, Decimal) for p in btc["sparkline_7d"])
    assert btc["image"].startswith("https://coin-images.coingecko.com/")
    eth = next(c for c in page.coins if c["id"] == "ETH")
    assert eth["max_supply"] is None  # null stays null
    # One request, with the documented parameters and the demo key header.
    assert server.hits == 1
    seen = server.requests[0]
    assert seen.path == "/api/v3/coins/markets"
    assert seen.query["vs_currency"] == "usd" and seen.query["order"] == "market_cap_desc"
    assert seen.query["per_page"] == "250" and seen.query["sparkline"] == "true"
    assert seen.query["price_change_percentage"] == "24h,7d,30d"
    assert seen.headers["x-cg-demo-api-key"] == "demo-key"
    client.close()


def test_pro_key_header_and_per_page_cap(server: FakeCoinGecko) -> None:
    client = CoinGeckoClient(server.base_url, "pro-key", "pro")
    client.fetch_markets(per_page=1000)
    seen = server.requests[0]
    assert seen.headers["x-cg-pro-api-key"] == "pro-key" and "x-cg-demo-api-key" not in seen.headers
    assert seen.query["per_page"] == "250"
    client.close()


def test_bad_coins_are_skipped_with_a_log_line(server: FakeCoinGecko, feed_logs: list[logging.LogRecord]) -> None:
    coins = recorded_coins()[:8]
    del coins[1]["current_price"]  # missing price
    coins[2]["current_price"] = -5  # negative price
    coins[3]["symbol"] = "us$d"  # not an asset id
    coins[4]["current_price"] = True  # not a number
    coins[5]["market_cap"] = -1  # bad optional field: dropped, coin kept
    expected = sorted(["BTC", *(coins[i]["symbol"].upper() for i in (5, 6, 7))])
    dup = dict(coins[0], id="bitcoin-bridged", market_cap_rank=900, current_price=1)  # duplicate symbol BTC
    coins.insert(0, dup)  # listed first, but the better-ranked coin wins
    coins.append("not a coin")  # type: ignore[arg-type]
    server.push(Reply(coins=coins))
    client = make_client(server)
    page = client.fetch_markets()
    ids = [c["id"] for c in page.coins]
    assert page.skipped == 6
    assert sorted(ids) == expected
    btc = next(c for c in page.coins if c["id"] == "BTC")
    assert btc["coingecko_id"] == "bitcoin"
    shifted = next(c for c in page.coins if c["id"] == coins[6]["symbol"].upper())
    assert shifted["market_cap"] is None and shifted["price_usd"] > 0
    messages = [r.getMessage() for r in feed_logs]
    assert any("bad price" in m for m in messages)
    assert any("duplicate symbol" in m for m in messages)
    assert any("missing id, symbol or name" in m or "not an object" in m for m in messages)
    assert client.breaker.failures == 0  # skipping coins is not a failed call
    client.close()


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body=b"<html>502 Bad Gateway</html>"),
        Reply(body=b'{"status": {"error_code": 429, "error_message": "rate limited"}}'),
        Reply(body=json.dumps(recorded_coins())[:5000].encode()),  # cut JSON, correct length
        Reply(truncate=True),  # connection closed before the announced length
        Reply(body=b"[]"),
        Reply(body=b'[{"id": "x"}]'),
    ],
    ids=["html", "error-object", "cut-json", "truncated", "empty", "no-usable-coin"],
)
def test_unusable_response_is_a_failed_call(server: FakeCoinGecko, reply: Reply) -> None:
    server.push(reply)
    client = make_client(server)
    with pytest.raises(FeedError):
        client.fetch_markets()
    assert client.breaker.failures == 1
    client.close()


def test_slow_response_times_out(server: FakeCoinGecko) -> None:
    server.push(Reply(delay=1.5))
    client = CoinGeckoClient(
        server.base_url, breaker=CircuitBreaker(backoff_base=timedelta(milliseconds=1)), timeout_ms=300
    )
    with pytest.raises(FeedError, match="Timeout"):
        client.fetch_markets()
    assert client.breaker.failures == 1
    client.close()


def test_429_retry_after_is_respected_without_another_call(server: FakeCoinGecko) -> None:
    server.push(Reply(status=429, headers={"Retry-After": "30"}, body=b'{"status":{"error_code":429}}'))
    client = make_client(server)
    before = datetime.now(timezone.utc)
    with pytest.raises(FeedError) as err:
        client.fetch_markets()
    assert err.value.status_code == 429 and err.value.retry_after == timedelta(seconds=30)
    assert client.breaker.retry_at is not None and client.breaker.retry_at >= before + timedelta(seconds=30)
    with pytest.raises(FeedUnavailable) as unavailable:
        client.fetch_markets()
    assert unavailable.value.reason == "backoff"
    assert server.hits == 1  # the refused call never reached the server
    client.close()


def test_retry_after_http_date_and_500(server: FakeCoinGecko) -> None:
    when = (datetime.now(timezone.utc) + timedelta(seconds=20)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    server.push(Reply(status=503, headers={"Retry-After": when}, body=b"busy"))
    client = make_client(server)
    with pytest.raises(FeedError) as err:
        client.fetch_markets()
    assert err.value.status_code == 503
    assert err.value.retry_after is not None and timedelta(seconds=15) < err.value.retry_after <= timedelta(seconds=20)
    client.close()


def test_exponential_backoff_with_jitter() -> None:
    breaker = CircuitBreaker(failure_threshold=10, reset_seconds=600, backoff_base=timedelta(seconds=2))
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    delays = []
    for attempt in range(1, 6):
        breaker.record_failure(now=now)
        assert breaker.retry_at is not None
        delay = breaker.retry_at - now
        full = timedelta(seconds=2) * 2 ** (attempt - 1)
        assert full / 2 <= delay <= full  # "equal jitter": half fixed, half random
        delays.append(delay)
    assert delays[-1] > delays[0] * 4
    with pytest.raises(FeedUnavailable):
        breaker.before_call(now)
    breaker.before_call(breaker.retry_at)  # allowed once the delay has passed


def test_breaker_opens_half_opens_and_closes(server: FakeCoinGecko) -> None:
    server.default = Reply(status=500, body=b"oops")
    client = make_client(server, failure_threshold=3, reset_seconds=1)
    for _ in range(3):
        with pytest.raises(FeedError):
            client.fetch_markets()
        time.sleep(0.01)  # past the (1 ms based) back-off
    assert client.breaker.current_state() == coingecko.OPEN and server.hits == 3
    with pytest.raises(FeedUnavailable) as exc:
        client.fetch_markets()
    assert exc.value.reason == "breaker_open" and server.hits == 3  # open: no call
    time.sleep(1.05)
    assert client.breaker.current_state() == coingecko.HALF_OPEN
    with pytest.raises(FeedError):  # the one trial call fails: open again
        client.fetch_markets()
    assert server.hits == 4 and client.breaker.current_state() == coingecko.OPEN
    time.sleep(1.05)
    server.default = Reply()
    page = client.fetch_markets()  # trial succeeds: closed
    assert page.coins and server.hits == 5
    assert client.breaker.current_state() == coingecko.CLOSED and client.breaker.failures == 0
    client.close()


def test_half_open_allows_a_single_trial() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=1)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    breaker.record_failure(now=now)
    later = now + timedelta(seconds=2)
    breaker.before_call(later)  # the trial
    with pytest.raises(FeedUnavailable):
        breaker.before_call(later)  # a second concurrent call is refused


def test_breaker_state_round_trips_through_a_dict() -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_seconds=60)
    breaker.record_failure()
    breaker.record_failure()
    saved = json.loads(json.dumps(breaker.to_dict()))
    assert saved["state"] == "open" and saved["failures"] == 2
    other = CircuitBreaker(failure_threshold=2, reset_seconds=60)
    other.restore(saved)
    assert other.current_state() == coingecko.OPEN
    with pytest.raises(FeedUnavailable):
        other.before_call()
    other.restore(None)  # a fresh database: closed
    assert other.current_state() == coingecko.CLOSED and other.failures == 0


def test_map_coins_rejects_non_list() -> None:
    with pytest.raises(FeedError):
        coingecko.map_coins({"coins": []})
    with pytest.raises(FeedError):
        coingecko.parse_body(b"\x00\xff not json")
    coins, skipped = coingecko.map_coins(
        coingecko.parse_body(b'[{"id":"a","symbol":"a","name":"A","current_price":NaN}]')
    )
    assert coins == [] and skipped == 1
