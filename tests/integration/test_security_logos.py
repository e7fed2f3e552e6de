"""Coin logos served by CNOP (A7: pages make no third-party requests): fetched from the fake feed after a
refresh, bounded and type-checked, served from /api/v1/inventory/assets/{id}/logo, letter avatar otherwise."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from cnop_app.api import create_api
from cnop_app.api.logos import logo_url
from cnop_app.db import read_session
from cnop_app.models import AssetLogo
from cnop_app.services import market
from cnop_app.services.market import logos
from cnop_app.state.market import AssetState, _row
from tests.support.coingecko_server import FakeCoinGecko, fake_coingecko  # noqa: F401  (fixture)


def png(width: int = 1, height: int = 1) -> bytes:
    """A valid PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80\x40\x20" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture
def feed(fake_coingecko: FakeCoinGecko, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCoinGecko]:  # noqa: F811
    """The fake feed with every coin's logo on the feed's own host."""
    logos.forget_failures()
    logos.forget_versions()
    monkeypatch.setattr(logos, "MAX_PER_RUN", 100)
    for coin in fake_coingecko.coins:
        coin["image"] = fake_coingecko.serve_file(f"/images/{coin['id']}.png", png(), "image/png")
    yield fake_coingecko
    logos.forget_failures()
    logos.forget_versions()


def cached() -> dict[str, AssetLogo]:
    with read_session() as session:
        return {row.asset_id: row for row in session.exec(select(AssetLogo)).all()}


def test_logos_are_copied_after_a_refresh_and_served_by_cnop(feed: FakeCoinGecko) -> None:
    assert market.refresh_prices().outcome == "ok"
    run = logos.refresh_logos()
    coins = len(feed.coins)
    assert (run.fetched, run.failed, run.pending) == (coins, 0, 0)
    assert "BTC" in cached() and len(cached()) == coins
    url = logo_url("BTC")
    assert url.startswith("/api/v1/inventory/assets/BTC/logo?v=")
    with TestClient(create_api()) as client:
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert response.content == png()
        assert "immutable" in response.headers["cache-control"]
        assert client.get("/api/v1/inventory/assets/NOPE/logo").status_code == 404
        assert client.get("/api/v1/inventory/assets/bad!id/logo").status_code == 422
        assert not [path for path in client.get("/openapi.json").json()["paths"] if path.endswith("/logo")]
    # Nothing to do on the next refresh: each logo is fetched once.
    hits = feed.hits
    assert logos.refresh_logos().fetched == 0
    assert feed.hits == hits


def test_page_rows_use_the_cached_logo_or_the_letter_avatar(feed: FakeCoinGecko) -> None:
    market.refresh_prices()
    asset = market.list_assets(limit=1)["data"][0]
    assert _row(asset)["image"] == ""  # not cached yet: the letter avatar, no request anywhere
    logos.refresh_logos()
    assert _row(asset)["image"] == logo_url(asset["asset_id"]) != ""
    assert not _row(asset)["image"].startswith(("http:", "https:"))
    assert AssetState  # the asset page takes its image from the same function


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"<html>not an image</html>", "text/html", "type"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "image/svg+xml", "type"),
        (b"<html>pretends</html>", "image/png", "bytes"),
        (png() + b"\x00" * logos.MAX_BYTES, "image/png", "size"),
    ],
)
def test_unacceptable_answers_are_not_cached(feed: FakeCoinGecko, body: bytes, content_type: str, reason: str) -> None:
    feed.serve_file(f"/images/{feed.coins[0]['id']}.png", body, content_type)
    market.refresh_prices()
    run = logos.refresh_logos()
    assert (run.fetched, run.failed) == (len(feed.coins) - 1, 1), reason
    assert len(cached()) == len(feed.coins) - 1
    # A failed URL waits RETRY_AFTER before it is tried again.
    hits = feed.hits
    assert logos.refresh_logos() == logos.LogoRun()
    assert feed.hits == hits


def test_only_the_feed_host_and_coingecko_images_are_fetched(feed: FakeCoinGecko) -> None:
    # A feed naming another address (an internal service, a redirect) gets no request from CNOP.
    feed.coins[0]["image"] = "http://127.0.0.2:9/metadata.png"
    feed.serve_file(f"/images/{feed.coins[1]['id']}.png", b"", "image/png", status=302, Location="http://127.0.0.2:9/")
    market.refresh_prices()
    run = logos.refresh_logos()
    assert (run.fetched, run.failed) == (len(feed.coins) - 2, 2)
    with pytest.raises(logos.LogoRejected):
        logos.check_url("http://169.254.169.254/latest/meta-data.png")
    logos.check_url("https://coin-images.coingecko.com/coins/images/1/large/bitcoin.png?1696500007")


def test_a_run_is_bounded(feed: FakeCoinGecko, monkeypatch: pytest.MonkeyPatch) -> None:
    coins = len(feed.coins)
    monkeypatch.setattr(logos, "MAX_PER_RUN", coins - 1)
    market.refresh_prices()
    assert logos.refresh_logos() == logos.LogoRun(fetched=coins - 1, failed=0, pending=1)
    assert logos.refresh_logos() == logos.LogoRun(fetched=1, failed=0, pending=0)


def test_offline_sources_fetch_nothing(cnop_env: object) -> None:
    market.seed_from_snapshot()
    assert logos.refresh_logos() == logos.LogoRun()
    logos.forget_versions()
    assert all(_row(asset)["image"] == "" for asset in market.list_assets(limit=10)["data"])
