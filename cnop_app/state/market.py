"""Market page, asset page and the top-bar market status; prices pushed live after each refresh.

Everything a client shows is formatted once per market version (module cache) and shared, not
copied: a refresh costs one DB read per process, and each client's state holds references to the
same immutable rows and maps. The market table is split by how often each part changes
(`cnop_app.state.rows`), and a client's var is assigned only when its value changed, so a push sends
each browser the prices that moved rather than the whole table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import reflex as rx

from cnop_app import formatting
from cnop_app.api.logos import logo_url
from cnop_app.domain.errors import DomainError
from cnop_app.domain.ranges import is_range
from cnop_app.domain.timeutil import parse_iso
from cnop_app.services import activity, market, watchlist
from cnop_app.services.auth import Principal
from cnop_app.state.auth import AuthState, signed_in
from cnop_app.state.rows import AssetDetail, MarketLine, MarketRow, MarketStatus, PricePoint

SORT_KEYS = ("rank", "name", "price", "change24", "change7d", "mcap", "volume")
SPARK_POINTS = 42
SPARK_SCALE = 1000
_HALF = Decimal("0.5")
# Row lists kept per (order, search) between two changes of the rows: every client showing the same
# order and search shares one list.
TABLE_CACHE_SIZE = 256
# The market table renders this many rows first and the rest once they are on screen: a screenful
# (a row is ~52 px: 11 rows at 800 px high, 17 at 1080) shows sooner than a whole table of 52 or 100
# rows, whose render grows with every row (bench/browser.py).
FIRST_ROWS = 20
# Never mutated: one empty map shared by every client with nothing flashing.
NO_FLASH: dict[str, str] = {}

V = TypeVar("V")


def _num(value: Any) -> Decimal | None:
    if value is None or isinstance(value, Decimal):  # the services' numbers are Decimal already
        return value
    return Decimal(str(value))


def _spark(values: list[Any]) -> list[str]:
    """The 7-day line as the page draws it: [width, points] of an SVG polyline, about SPARK_POINTS points
    with x the point's index (0..width) and y from SPARK_SCALE (the lowest price) to 0 (the highest).
    A plain polyline costs the browser nothing to draw, 52 times on each refresh, unlike a chart."""
    if not values:
        return ["1", ""]
    step = max(1, len(values) // SPARK_POINTS)
    # Chart coordinates are display data; the exact prices stay Decimal in the services.
    points = [v if isinstance(v, Decimal) else Decimal(str(v)) for v in values[::step]]  # the services' are Decimal
    low, high = min(points), max(points)
    span = high - low
    if span:
        # One division per line, not per point: each new table scales every line whose prices moved.
        per_unit, top = SPARK_SCALE / span, SPARK_SCALE + _HALF
        ys = [int(top - (p - low) * per_unit) for p in points]
    else:
        ys = [SPARK_SCALE // 2] * len(points)  # a flat line runs across the middle
    return [str(max(1, len(ys) - 1)), " ".join([f"{x},{y}" for x, y in enumerate(ys)])]


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


def _kept(old: Mapping[str, V], new: dict[str, V]) -> dict[str, V]:
    """`new` with every value equal to the one in `old` replaced by that object; `old` itself when the
    two are equal. Unchanged data keeps its identity, so clients holding it share one copy and an
    identity check tells a client it already has it."""
    for key, value in new.items():
        before = old.get(key)
        if before is not None and before is not value and before == value:
            new[key] = before
    return old if old == new else new  # type: ignore[return-value]


class MarketView:
    """The market table of one market version, shared by every client of this process (read only)."""

    def __init__(
        self,
        version: int,
        raw: list[dict[str, Any]],
        previous: MarketView | None,
    ) -> None:
        self.version = version
        self.raw = raw
        before = previous or _EMPTY_VIEW
        self.rows: dict[str, MarketRow] = _kept(before.rows, {a["asset_id"]: _row(a) for a in raw})
        self.lines: dict[str, MarketLine] = _kept(before.lines, {k: _line(r) for k, r in self.rows.items()})
        self.prices: dict[str, str] = _kept(before.prices, {k: r["price"] for k, r in self.rows.items()})
        self.changes: dict[str, list[str]] = _kept(before.changes, {k: _change(r) for k, r in self.rows.items()})
        rows = self.rows.items()
        self.mcaps: dict[str, list[str]] = _kept(before.mcaps, {k: [r["mcap"], r["mcap_exact"]] for k, r in rows})
        self.volumes: dict[str, list[str]] = _kept(
            before.volumes, {k: [r["volume"], r["volume_exact"]] for k, r in rows}
        )
        # A sparkline is scaled again only when its prices changed (hourly at most, not every refresh).
        self.spark_sources: dict[str, list[Any]] = {a["asset_id"]: a.get("sparkline_7d") or [] for a in raw}
        sparks = {
            k: before.sparks[k] if k in before.sparks and before.spark_sources.get(k) == v else _spark(v)
            for k, v in self.spark_sources.items()
        }
        self.sparks: dict[str, list[str]] = _kept(before.sparks, sparks)
        self.ids = frozenset(self.rows)
        # The rows' order and fields are those of the previous version: the cached row lists stay valid.
        self.same_lines = previous is not None and self.lines is previous.lines
        self.previous_prices = before.prices
        self.flash = self._flash_since(before.prices)
        self._orders: dict[tuple[str, bool], tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def order(self, key: str, desc: bool) -> tuple[str, ...]:
        """Asset ids sorted by `key` (assets without a value last), computed once per version."""
        with self._lock:
            found = self._orders.get((key, desc))
            if found is None:
                valued = [a for a in self.raw if _sort_value(a, key) is not None]
                missing = [a for a in self.raw if _sort_value(a, key) is None]
                valued.sort(key=lambda a: _sort_value(a, key), reverse=desc)
                found = self._orders[key, desc] = tuple(a["asset_id"] for a in valued + missing)
            return found

    def extend(self, order: tuple[str, ...]) -> tuple[str, ...]:
        """`order` with the assets it does not know yet appended (rows never jump under the cursor)."""
        if self.ids.issubset(order):
            return order
        known = set(order)
        return order + tuple(a["asset_id"] for a in self.raw if a["asset_id"] not in known)

    def flash_since(self, seen: Mapping[str, str]) -> dict[str, str]:
        """Asset id -> price element key, for the prices that moved since a client saw `seen`."""
        if seen is self.prices:
            return NO_FLASH
        if seen is self.previous_prices:
            return self.flash
        return self._flash_since(seen)

    def _flash_since(self, seen: Mapping[str, str]) -> dict[str, str]:
        moved = {
            key: f"{key}-{self.version}"  # re-keyed per market version, so the flash animation replays
            for key, price in self.prices.items()
            if (before := seen.get(key)) is not None and before != price
        }
        return moved or NO_FLASH


def _line(row: MarketRow) -> MarketLine:
    return MarketLine(
        id=row["id"], name=row["name"], image=row["image"], rank=row["rank"], stale=row["stale"], active=row["active"]
    )


def _change(row: MarketRow) -> list[str]:
    return [row["change24"], row["dir24"], row["change7d"], row["dir7d"]]  # positions: cnop_app.state.rows


class _NoView:
    rows: dict[str, MarketRow] = {}
    lines: dict[str, MarketLine] = {}
    prices: dict[str, str] = {}
    changes: dict[str, list[str]] = {}
    mcaps: dict[str, list[str]] = {}
    volumes: dict[str, list[str]] = {}
    sparks: dict[str, list[str]] = {}
    spark_sources: dict[str, list[Any]] = {}


_EMPTY_VIEW: Any = _NoView()


class _Snapshot:
    """Formatted rows and market status, shared by every client of this process.

    The shared market version is read at most once a second, so a push to N browsers costs one
    database check, not N; rows are rebuilt only when the version moved.
    """

    CHECK_SECONDS = 1.0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checked = 0.0
        self.view: MarketView | None = None
        self.status = MarketStatus(label="", colour="gray", as_of="", as_of_exact="", breaker="")
        self._tables: dict[tuple[tuple[str, ...], str], list[MarketLine]] = {}

    def _refresh_locked(self) -> MarketView:
        now = time.monotonic()
        view = self.view
        if view is not None and view.raw and now - self.checked < self.CHECK_SECONDS:
            return view
        version = market.market_version()
        if view is None or version != view.version or not view.raw:
            view = MarketView(version or 0, market.market_table(), view)
            if not view.same_lines:
                self._tables = {}
            self.view = view
        self.status = _status_view()  # its "as of … ago" text ages even without a new version
        self.checked = now
        return view

    def current(self) -> MarketView:
        with self.lock:
            return self._refresh_locked()

    def get(self) -> tuple[int, list[dict[str, Any]], dict[str, MarketRow]]:
        view = self.current()
        return view.version, view.raw, view.rows

    def get_status(self) -> MarketStatus:
        with self.lock:
            self._refresh_locked()
            return self.status

    def table(self, view: MarketView, order: tuple[str, ...], search: str) -> list[MarketLine]:
        """The rows of `view` in `order` whose name or id contains `search` (lower case); one shared list
        per (order, search) while the rows do not change."""
        key = (order, search)
        with self.lock:
            current = view is self.view
            found = self._tables.get(key) if current else None
        if found is not None:
            return found
        lines = [line for asset_id in order if (line := view.lines.get(asset_id)) is not None]
        if search:
            lines = [r for r in lines if search in r["name"].lower() or search in r["id"].lower()]
        if current:
            with self.lock:
                if view is self.view:
                    if len(self._tables) >= TABLE_CACHE_SIZE:
                        self._tables.clear()
                    found = self._tables.setdefault(key, lines)
                    return found
        return lines

    def invalidate(self) -> None:
        """Re-read on the next call (the live push runs right after new prices were stored)."""
        with self.lock:
            self.checked = 0.0

    def clear(self) -> None:
        """Forget everything (tests switching databases, whose market versions can be equal)."""
        with self.lock:
            self.view, self.checked, self._tables = None, 0.0, {}


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


def _update(state: rx.State, names: Iterable[str], values: Iterable[Any]) -> None:
    """Assign only the vars whose value changed: Reflex sends every assigned var, whole."""
    for name, value in zip(names, values, strict=True):
        current = state.get_value(name)
        if current is not value and current != value:
            setattr(state, name, value)


class MarketState(AuthState):
    """The market table. `live` marks clients that receive pushed prices."""

    rows: list[MarketLine] = []  # in the order the user sees, filtered by the search
    prices: dict[str, str] = {}  # asset id -> price; the maps hold every asset, shared by all clients
    changes: dict[str, list[str]] = {}  # asset id -> [change24, dir24, change7d, dir7d]
    mcaps: dict[str, list[str]] = {}  # asset id -> [compact, exact]
    volumes: dict[str, list[str]] = {}  # asset id -> [compact, exact]
    sparks: dict[str, list[str]] = {}  # asset id -> [polyline width, polyline points]
    flash: dict[str, str] = {}  # asset id -> price element key, for the prices that moved since the last push
    search: str = ""
    sort_key: str = "rank"
    sort_desc: bool = False
    loading: bool = True
    # False until the table's first `FIRST_ROWS` rows are on screen. Never reset: a reconnect reruns
    # `load` while the table stays mounted, and its request for the rest would not come again.
    all_rows: bool = False
    error: str = ""
    status_label: str = ""
    status_colour: str = "gray"
    as_of: str = ""
    as_of_exact: str = ""
    live: bool = False
    starred: list[str] = []  # the signed-in user's watchlist (asset ids)
    # Row order the user sees; kept on live updates so rows never jump under the cursor.
    _order: tuple[str, ...] = ()

    def _apply(self, resort: bool) -> None:
        view = snapshot.current()
        order = view.order(self.sort_key, self.sort_desc) if resort or not self._order else view.extend(self._order)
        if order is not self._order:
            self._order = order
        rows = snapshot.table(view, order, self.search.strip().lower())
        flash = view.flash_since(self.get_value("prices"))
        _update(
            self,
            ("rows", "prices", "changes", "mcaps", "volumes", "sparks", "flash", "loading"),
            (rows, view.prices, view.changes, view.mcaps, view.volumes, view.sparks, flash, False),
        )
        self._show_status(snapshot.get_status())

    def _show_status(self, status: MarketStatus) -> None:
        _update(
            self,
            ("status_label", "status_colour", "as_of", "as_of_exact"),
            (status["label"], status["colour"], status["as_of"], status["as_of_exact"]),
        )

    @rx.event
    def load(self) -> None:
        self._identify()
        activity.record_ui_event("page_view", self.username or None)
        self._follow_prices()
        self.error = ""
        # `username` was just set from the verified session (empty when nobody is signed in).
        self.starred = sorted(watchlist.asset_ids(self.username)) if self.username else []
        try:
            self._apply(resort=True)
        except DomainError as exc:
            self.error = exc.message
            self.loading = False

    @rx.event
    def show_all_rows(self) -> None:
        """The first rows are on screen: render the rest (sent by the table once it has mounted)."""
        self.all_rows = True

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
            self._follow_prices()
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
        self._follow_prices()

    def _on_prices(self, principal: Principal | None) -> None:
        if self.live:
            _update(self, ("movers",), (top_movers(),))
