"""The bundled market snapshot (`assets/market_snapshot.json`, a recorded `/coins/markets` response).

It seeds an empty catalogue, is the `snapshot` source itself and the base of the simulated market.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from cnop_app.db import read_session
from cnop_app.domain.timeutil import iso
from cnop_app.models import Asset
from cnop_app.observability.logging import get_logger
from cnop_app.services import coingecko
from cnop_app.services.market.store import store_prices

_log = get_logger("market")

SNAPSHOT_PATH = Path(__file__).resolve().parents[3] / "assets" / "market_snapshot.json"


@lru_cache(maxsize=4)
def _snapshot_coins(path: str, mtime_ns: int) -> tuple[dict[str, Any], ...]:
    coins, skipped = coingecko.map_coins(coingecko.parse_body(Path(path).read_bytes()))
    if skipped:
        _log.warning("snapshot coins skipped", extra={"skipped": skipped})
    return tuple(coins)


def snapshot_coins() -> list[dict[str, Any]]:
    """The bundled snapshot, mapped exactly like a feed response (copies: callers may modify them)."""
    stat = SNAPSHOT_PATH.stat()
    return [dict(coin) for coin in _snapshot_coins(str(SNAPSHOT_PATH), stat.st_mtime_ns)]


def seed_from_snapshot() -> int:
    """Fill an empty catalogue from the bundled snapshot. Returns the number of assets added (0 if not empty)."""
    with read_session() as session:
        if session.exec(select(func.count()).select_from(Asset)).one():
            return 0
    coins = snapshot_coins()
    as_of = max((c["last_updated"] for c in coins if c["last_updated"]), default=None)
    try:
        stored, _changed, _version = store_prices(
            coins, "snapshot", {"snapshot_as_of": iso(as_of)}, only_if_empty=True, success=False
        )
    except IntegrityError:
        return 0  # another process seeded at the same moment
    if stored:
        _log.info("catalogue seeded from snapshot", extra={"assets": stored})
    return stored


def ensure_catalogue() -> None:
    """The catalogue is never empty: seed it from the snapshot when it is."""
    seed_from_snapshot()
