"""Market page, asset page and the top-bar market status; prices pushed live after each refresh.

The rows shown to every client are formatted once per market version (module cache) and copied into
each client's state, so a refresh costs one DB read per process, not one per browser.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import reflex as rx

from cnop_app import formatting
from cnop_app.api.logos import logo_url
from cnop_app.domain.errors import DomainError
from cnop_app.domain.ranges import is_range
from cnop_app.domain.timeutil import parse_iso
from cnop_app.services import activity, market, watchlist
from cnop_app.services.auth import Principal
from cnop_app.state.auth import AuthState, signed_in
from cnop_app.state.rows import AssetDetail, MarketRow, MarketStatus, PricePoint, SparkPoint

SORT_KEYS = ("rank", "name", "price", "change24", "change7d", "mcap", "volume")
SPARK_POINTS = 42


def _num(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _spark(values: list[Any]) -> list[SparkPoint]:
    if not values:
        return []
    step = max(1, len(values) // SPARK_POINTS)
    # Chart coordinates are display data; the exact prices stay Decimal in the services.
    return [SparkPoint(v=float(v)) for v in values[::step]]


def _row(a: dict[str, Any]) -> MarketRow:
    change24 = _num(a.get("price_change_percentage_24h"))
    change7d = _num(a.get("price_change_percentage_7d"))
    return MarketRow(
        id=a["asset_id"],
        name=a["name"],
        image=logo_url(a["asset_id"]),  # CNOP's cached copy, or "" (letter avatar): no third-party request
        rank=str(a.get("market_cap_rank") or "—"),
        price=formatting.usd(_num(a.get("price_usd"))),
        change24=formatting.percent(change24),
        dir24=formatting.direction(change24),
        change7d=formatting.percent(change7d),
        dir7d=formatting.direction(change7d),
        mcap=formatting.usd_compact(_num(a.get("market_cap"))),
        mcap_exact=formatting.usd(_num(a.get("market_cap"))),
        volume=formatting.usd_compact(_num(a.get("total_volume_24h"))),
        volume_exact=formatting.usd(_num(a.get("total_volume_24h"))),
        spark=_spark(a.get("sparkline_7d") or []),
        stale="yes" if a.get("stale") else "",
        active="yes" if a.get("is_active") else "",
        flash="",
        key=a["asset_id"],
    )


def _sort_value(a: dict[str, Any], key: str) -> Any:
    field = {
        "rank": "market_cap_rank",
        "price": "price_usd",
        "change24": "price_change_percentage_24h",
        "change7d": "price_change_percentage_7d",
        "mcap": "market_cap",
        "volume": "total_volume_24h",
    }.get(key)
    if key == "name":
        return a["name"].lower()
    value = a.get(field) if field else None
    return Decimal(str(value)) if value is not None else None


def _status_view() -> MarketStatus:
    status = market.market_status()
    from_time = parse_iso(status.get("as_of"))
    source = status["source"]
    if status["stale"]:
        label, colour = f"stale since {formatting.relative_time(from_time)}", "amber"
    elif source == "snapshot":
        label, colour = "offline prices", "gray"
    elif source == "simulated":
        label, colour = "simulated · live", "blue"
    else:
        label, colour = "live", "green"
    return MarketStatus(
        label=label,
        colour=colour,
        as_of=formatting.relative_time(from_time),
        as_of_exact=formatting.utc_exact(from_time),
        breaker=status["breaker"]["state"],
    )


class _Snapshot:
    """Formatted rows and market status, shared by every client of this process.

    The shared market version is read at most once a second, so a push to N browsers costs one
    database check, not N; rows are rebuilt only when the version moved.
    """

    CHECK_SECONDS = 1.0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version: int | None = None
        self.checked = 0.0
        self.raw: list[dict[str, Any]] = []
        self.rows: dict[str, MarketRow] = {}
        self.status = MarketStatus(label="", colour="gray", as_of="", as_of_exact="", breaker="")

    def _refresh_locked(self) -> None:
        now = time.monotonic()
        if self.raw and now - self.checked < self.CHECK_SECONDS:
            return
        version = market.market_version()
        if version != self.version or not self.raw:
            self.raw = market.all_assets(active_only=False)
            self.rows = {a["asset_id"]: _row(a) for a in self.raw}
            self.version = version
        self.status = _status_view()  # its "as of … ago" text ages even without a new version
        self.checked = now

    def get(self) -> tuple[int, list[dict[str, Any]], dict[str, MarketRow]]:
        with self.lock:
            self._refresh_locked()
            return self.version or 0, self.raw, self.rows

    def get_status(self) -> MarketStatus:
        with self.lock:
            self._refresh_locked()
            return self.status

    def invalidate(self) -> None:
        """Re-read on the next call (the live push runs right after new prices were stored)."""
        with self.lock:
            self.checked = 0.0

    def clear(self) -> None:
        """Forget everything (tests switching databases, whose market versions can be equal)."""
        with self.lock:
            self.version, self.checked, self.raw, self.rows = None, 0.0, [], {}


snapshot = _Snapshot()


def _toggle_star(state: MarketState | AssetState, principal: Principal, asset_id: str) -> rx.event.EventSpec | None:
    key = asset_id.strip().upper()[:10] if isinstance(asset_id, str) else ""
    try:
        if key in watchlist.asset_ids(principal.username):
            watchlist.remove(principal.username, key)
            message = f"{key} removed from your watchlist"
        else:
            watchlist.add(principal.username, key)
            message = f"{key} added to your watchlist"
    except DomainError as exc:
        return rx.toast.error(exc.message)
    starred = watchlist.asset_ids(principal.username)
    if isinstance(state, MarketState):
        state.starred = sorted(starred)
    else:
        state.starred = key in starred
    return rx.toast.success(message)


class MarketState(AuthState):
    """The market table. `live` marks clients that receive pushed prices."""

    rows: list[MarketRow] = []
    search: str = ""
    sort_key: str = "rank"
    sort_desc: bool = False
    loading: bool = True
    error: str = ""
    status_label: str = ""
    status_colour: str = "gray"
    as_of: str = ""
    as_of_exact: str = ""
    version: int = 0
    live: bool = False
    starred: list[str] = []  # the signed-in user's watchlist (asset ids)
    # Row order the user sees; kept on live updates so rows never jump under the cursor.
    _order: list[str] = []

    def _apply(self, resort: bool) -> None:
        version, raw, formatted = snapshot.get()
        previous = {r["id"]: r["price"] for r in self.rows}
        if resort or not self._order:
            ordered = [a for a in raw if _sort_value(a, self.sort_key) is not None]
            missing = [a for a in raw if _sort_value(a, self.sort_key) is None]
            ordered.sort(key=lambda a: _sort_value(a, self.sort_key), reverse=self.sort_desc)
            self._order = [a["asset_id"] for a in ordered + missing]
        else:
            known = set(self._order)
            self._order = self._order + [a["asset_id"] for a in raw if a["asset_id"] not in known]
        needle = self.search.strip().lower()
        rows: list[MarketRow] = []
        for asset_id in self._order:
            row = formatted.get(asset_id)
            if row is None:
                continue
            if needle and needle not in row["name"].lower() and needle not in asset_id.lower():
                continue
            old = previous.get(asset_id)
            flash = "" if old is None or old == row["price"] else "changed"
            rows.append({**row, "flash": flash, "key": f"{asset_id}-{version}" if flash else asset_id})
        self.rows = rows
        self.version = version
        self._show_status(snapshot.get_status())
        self.loading = False

    def _show_status(self, status: MarketStatus) -> None:
        self.status_label, self.status_colour = status["label"], status["colour"]
        self.as_of, self.as_of_exact = status["as_of"], status["as_of_exact"]

    @rx.event
    def load(self) -> None:
        self._identify()
        activity.record_ui_event("page_view", self.username or None)
        self.live = True
        self.error = ""
        # `username` was just set from the verified session (empty when nobody is signed in).
        self.starred = sorted(watchlist.asset_ids(self.username)) if self.username else []
        try:
            self._apply(resort=True)
        except DomainError as exc:
            self.error = exc.message
            self.loading = False

    @rx.event
    def load_status(self) -> None:
        self._show_status(snapshot.get_status())

    @rx.event
    def set_search(self, value: str) -> None:
        self.search = value[:40]
        self._apply(resort=False)

    @rx.event
    def sort_by(self, key: str) -> None:
        if key not in SORT_KEYS:
            return
        if key == self.sort_key:
            self.sort_desc = not self.sort_desc
        else:
            self.sort_key, self.sort_desc = key, key not in ("rank", "name")
        self._apply(resort=True)

    @rx.event
    @signed_in
    def toggle_star(self, principal: Principal, asset_id: str) -> rx.event.EventSpec | None:
        """Star or unstar an asset (the dashboard shows the starred ones)."""
        return _toggle_star(self, principal, asset_id)

    def _on_prices(self, principal: Principal | None) -> None:
        """Called by the live push after a refresh (not an event: the browser cannot trigger it)."""
        if self.live:
            self._apply(resort=False)
        else:
            self.load_status()


class AssetState(AuthState):
    """One asset: every detail field, a price chart with a range switcher, Buy/Sell."""

    current_id: str = ""
    found: bool = True
    loading: bool = True
    detail: AssetDetail = {}
    chart: list[PricePoint] = []
    chart_range: str = "7d"
    chart_change: str = ""
    chart_dir: str = "flat"
    live: bool = False
    starred: bool = False

    def _fill(self) -> None:
        data = market.get_asset(self.current_id)
        change24 = _num(data.get("price_change_percentage_24h"))
        self.detail = AssetDetail(
            name=data["name"],
            image=logo_url(data["asset_id"]),
            rank=str(data.get("market_cap_rank") or "—"),
            price=formatting.usd(_num(data.get("price_usd"))),
            change24=formatting.percent(change24),
            dir24=formatting.direction(change24),
            change_abs24=formatting.usd(_num(data.get("price_change_24h"))),
            change7d=formatting.percent(_num(data.get("price_change_percentage_7d"))),
            change30d=formatting.percent(_num(data.get("price_change_percentage_30d"))),
            high24=formatting.usd(_num(data.get("high_24h"))),
            low24=formatting.usd(_num(data.get("low_24h"))),
            mcap=formatting.usd(_num(data.get("market_cap"))),
            volume=formatting.usd(_num(data.get("total_volume_24h"))),
            circulating=formatting.quantity(_num(data.get("circulating_supply"))),
            total_supply=formatting.quantity(_num(data.get("total_supply"))),
            max_supply=formatting.quantity(_num(data.get("max_supply"))),
            ath=formatting.usd(_num(data.get("ath"))),
            ath_change=formatting.percent(_num(data.get("ath_change_percentage"))),
            ath_date=(data.get("ath_date") or "—")[:10],
            atl=formatting.usd(_num(data.get("atl"))),
            atl_change=formatting.percent(_num(data.get("atl_change_percentage"))),
            atl_date=(data.get("atl_date") or "—")[:10],
            status=data.get("availability_status", "unavailable"),
            last_updated=formatting.relative_time(parse_iso(data.get("last_updated"))),
            stale="yes" if data.get("stale") else "",
            description=data.get("description") or "",
        )
        history = market.asset_history(self.current_id, self.chart_range)
        points = history["points"]
        # Chart coordinates are display data; labels are formatted here once.
        self.chart = [
            PricePoint(t=p["at"][5:16].replace("T", " "), price=float(p["price"]), label=formatting.usd(p["price"]))
            for p in points
        ]
        change = history.get("change_percentage")
        self.chart_change = formatting.percent(change) if change is not None else ""
        self.chart_dir = formatting.direction(change)
        self.loading = False

    @rx.event
    def load(self) -> None:
        self._identify()
        # /market/<asset_id>: read from the URL path (the browser cannot set backend vars).
        segments = [part for part in (self.router.url.path or "").split("/") if part]
        self.current_id = segments[-1].upper()[:10] if len(segments) >= 2 else ""
        activity.record_ui_event("page_view", self.username or None)
        self.loading = True
        self.starred = bool(self.username) and self.current_id in watchlist.asset_ids(self.username)
        try:
            self._fill()
            self.found = True
            self.live = True
        except DomainError:
            self.found = False
            self.loading = False

    @rx.event
    @signed_in
    def toggle_star(self, principal: Principal) -> rx.event.EventSpec | None:
        if not self.found or not self.current_id:
            return None
        return _toggle_star(self, principal, self.current_id)

    @rx.event
    def set_range(self, value: str | list[str]) -> None:
        if is_range(value):
            self.chart_range = str(value)
            try:
                self._fill()
            except DomainError:
                self.found = False

    def _on_prices(self, principal: Principal | None) -> None:
        if self.live and self.found and self.current_id:
            try:
                self._fill()
            except DomainError:
                self.found = False


def top_movers(count: int = 6) -> list[MarketRow]:
    """The assets that moved most in 24h (either way), formatted as market rows."""
    _, raw, formatted = snapshot.get()
    ranked = [a for a in raw if a.get("price_change_percentage_24h") is not None and a.get("is_active")]
    ranked.sort(key=lambda a: abs(Decimal(str(a["price_change_percentage_24h"]))), reverse=True)
    return [formatted[a["asset_id"]] for a in ranked[:count]]


class LandingState(AuthState):
    """Live top movers on the landing page."""

    movers: list[MarketRow] = []
    live: bool = False

    @rx.event
    def load(self) -> None:
        self._identify()
        self.movers = top_movers()
        self.live = True

    def _on_prices(self, principal: Principal | None) -> None:
        if self.live:
            self.movers = top_movers()
