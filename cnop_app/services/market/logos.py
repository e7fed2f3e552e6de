"""Coin logos served by CNOP: fetched from the feed's image URLs after a good refresh, kept in the database.

Pages make no third-party requests (a hot-linked logo tells the CDN every visitor's IP, and offline it
is a console error), so the logos are copied here: only from the feed's own host or CoinGecko's image
hosts (never an address the feed names elsewhere), no redirects, at most `MAX_BYTES` each, and only
PNG, JPEG, WebP or GIF whose first bytes match the announced type (never SVG, which can carry script).
A refresh fetches at most `MAX_PER_RUN` logos within `RUN_BUDGET_NS` (10 s); a failed URL is retried
after `RETRY_AFTER_NS` (an hour). Until an asset has a logo here, the UI shows its letter avatar.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from sqlmodel import col, select

from cnop_app.config import get_settings
from cnop_app.db import read_session, write_session
from cnop_app.domain.timeutil import NS_PER_SECOND, utcnow
from cnop_app.models import Asset, AssetLogo
from cnop_app.observability.logging import get_logger

_log = get_logger("market.logos")

MAX_BYTES = 100_000
MAX_PER_RUN = 25
FETCH_TIMEOUT_SECONDS = 3
# Monotonic clock readings (`time.monotonic_ns()`) and these durations are integer nanoseconds.
RUN_BUDGET_NS = 10 * NS_PER_SECOND
RETRY_AFTER_NS = 3600 * NS_PER_SECOND
VERSIONS_TTL_NS = 30 * NS_PER_SECOND
COINGECKO_IMAGE_HOSTS = frozenset({"coin-images.coingecko.com", "assets.coingecko.com"})
# Content type -> the file signature its bytes must start with (WebP: RIFF....WEBP, checked below).
SIGNATURES = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
    "image/gif": b"GIF8",
    "image/webp": b"RIFF",
}


class LogoRejected(Exception):
    """The URL or the answer is not an acceptable logo."""


@dataclass(frozen=True)
class Logo:
    content_type: str
    data: bytes
    sha256: str


@dataclass(frozen=True)
class LogoRun:
    fetched: int = 0
    failed: int = 0
    pending: int = 0  # still to fetch (the per-run bound or the time budget was reached)


def allowed_hosts() -> frozenset[str]:
    feed_host = urlsplit(get_settings().coingecko_base_url).hostname or ""
    return COINGECKO_IMAGE_HOSTS | {feed_host.lower()}


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or (parts.hostname or "").lower() not in allowed_hosts():
        raise LogoRejected(f"not a feed image URL: {url[:100]}")


def check_image(content_type: str, data: bytes) -> str:
    """The normalised content type when `data` is an acceptable logo of that type, else LogoRejected."""
    kind = content_type.split(";", 1)[0].strip().lower()
    signature = SIGNATURES.get(kind)
    if signature is None:
        raise LogoRejected(f"not an accepted image type: {kind[:40]!r}")
    if not data or len(data) > MAX_BYTES:
        raise LogoRejected(f"size {len(data)} is outside 1..{MAX_BYTES} bytes")
    if not data.startswith(signature) or (kind == "image/webp" and data[8:12] != b"WEBP"):
        raise LogoRejected(f"the bytes are not {kind}")
    return kind


def fetch(client: httpx.Client, url: str) -> Logo:
    """Download one logo within the bounds (streamed: a huge answer is cut off at MAX_BYTES + 1)."""
    check_url(url)
    with client.stream("GET", url) as response:
        if response.status_code != 200:
            raise LogoRejected(f"HTTP {response.status_code}")
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BYTES:
            raise LogoRejected(f"size {length} is over {MAX_BYTES} bytes")
        body = bytearray()
        for chunk in response.iter_bytes():
            body.extend(chunk)
            if len(body) > MAX_BYTES:
                raise LogoRejected(f"more than {MAX_BYTES} bytes")
        content_type = check_image(response.headers.get("content-type", ""), bytes(body))
    return Logo(content_type=content_type, data=bytes(body), sha256=hashlib.sha256(body).hexdigest())


_failures_lock = threading.Lock()
_failed_until: dict[str, int] = {}


def _may_try(url: str, now_ns: int) -> bool:
    with _failures_lock:
        return _failed_until.get(url, 0) <= now_ns


def _failed(url: str, now_ns: int) -> None:
    with _failures_lock:
        if len(_failed_until) > 10_000:  # bounded whatever the feed sends
            _failed_until.clear()
        _failed_until[url] = now_ns + RETRY_AFTER_NS


def forget_failures() -> None:
    with _failures_lock:
        _failed_until.clear()


def refresh_logos() -> LogoRun:
    """Fetch the logos that are missing or whose feed URL changed (a post-refresh callback: it runs only
    after a refresh that stored prices, so the feed is reachable). Only for the `coingecko` source."""
    if get_settings().market_source != "coingecko":
        return LogoRun()
    with read_session() as session:
        wanted = {
            asset_id: url
            for asset_id, url in session.exec(select(Asset.id, Asset.image).where(col(Asset.image).is_not(None)))
            if url
        }
        have = dict(session.exec(select(AssetLogo.asset_id, AssetLogo.source_url)).all())
    now = time.monotonic_ns()
    todo = [(asset_id, url) for asset_id, url in sorted(wanted.items()) if have.get(asset_id) != url]
    todo = [(asset_id, url) for asset_id, url in todo if _may_try(url, now)]
    fetched: dict[str, tuple[str, Logo]] = {}
    failed = 0
    deadline = now + RUN_BUDGET_NS
    with httpx.Client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False) as client:
        for asset_id, url in todo[:MAX_PER_RUN]:
            if time.monotonic_ns() > deadline:
                break
            try:
                fetched[asset_id] = (url, fetch(client, url))
            except (LogoRejected, httpx.HTTPError) as exc:
                failed += 1
                _failed(url, time.monotonic_ns())
                _log.info("logo not cached", extra={"asset_id": asset_id, "reason": str(exc)[:200]})
    if fetched:
        _store(fetched)
        forget_versions()
    return LogoRun(fetched=len(fetched), failed=failed, pending=max(0, len(todo) - len(fetched) - failed))


def _store(fetched: dict[str, tuple[str, Logo]]) -> None:
    """One transaction for the run (at most MAX_PER_RUN x MAX_BYTES held until then)."""
    now = utcnow()
    with write_session() as session:
        for asset_id, (url, logo) in fetched.items():
            row = session.get(AssetLogo, asset_id) or AssetLogo(
                asset_id=asset_id, source_url=url, content_type=logo.content_type, data=b"", sha256=""
            )
            row.source_url, row.content_type, row.data, row.sha256 = url, logo.content_type, logo.data, logo.sha256
            row.fetched_at = now
            session.add(row)


def get_logo(asset_id: str) -> Logo | None:
    with read_session() as session:
        row = session.get(AssetLogo, asset_id.upper()[:10])
    return Logo(row.content_type, row.data, row.sha256) if row is not None else None


_versions_lock = threading.Lock()
_versions: tuple[int, dict[str, str]] = (0, {})


def versions() -> dict[str, str]:
    """asset id -> a short hash of its cached logo (one small query every VERSIONS_TTL_NS)."""
    global _versions
    now = time.monotonic_ns()
    with _versions_lock:
        loaded_at, known = _versions
        if loaded_at and now - loaded_at < VERSIONS_TTL_NS:
            return known
    with read_session() as session:
        rows = session.exec(select(AssetLogo.asset_id, AssetLogo.sha256)).all()
    fresh = {asset_id: digest[:12] for asset_id, digest in rows}
    with _versions_lock:
        _versions = (now, fresh)
    return fresh


def forget_versions() -> None:
    global _versions
    with _versions_lock:
        _versions = (0, {})


def version(asset_id: str) -> str | None:
    return versions().get(asset_id)
