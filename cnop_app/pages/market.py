"""The market table (live). The asset page is cnop_app/pages/asset.py."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex_components_core.react_router.dom import ReactRouterLink

from cnop_app.components.figures import signed, star_button
from cnop_app.components.layout import page
from cnop_app.state.market import FIRST_ROWS, SPARK_SCALE, MarketState
from cnop_app.state.rows import CHANGE7D, CHANGE24, COMPACT, DIR7D, DIR24, EXACT

# On a phone the table shows the star, the asset, its price and the 24h change; the rest appears on
# wider screens (and the table still scrolls sideways inside its box if it must): the classes
# `from-tablet` and `from-desktop` of assets/cnop.css, on header and row cells alike.


def _header(label: str, key: str, align: str = "right", class_name: str = "") -> rx.Component:
    return rx.table.column_header_cell(
        rx.button(
            label,
            rx.cond(
                MarketState.sort_key == key,
                rx.cond(MarketState.sort_desc, rx.icon("chevron-down", size=14), rx.icon("chevron-up", size=14)),
            ),
            variant="ghost",
            size="1",
            color_scheme="gray",
            on_click=MarketState.sort_by(key),
            aria_label=f"Sort by {label}",
        ),
        text_align=align,
        class_name=class_name,
    )


def _sparkline(asset_id: Any, dir7d: Any) -> rx.Component:
    """The 7-day line: 120 x 36 px, drawn inside a 5 px margin, 1.5 px wide in the 7d change's colour
    (class `spark` in assets/cnop.css)."""
    spark = MarketState.sparks[asset_id]
    return rx.el.svg(
        rx.el.svg(
            rx.el.svg.polyline(points=spark[1]),
            # Attributes: as style they would not place the box.
            custom_attrs={"x": "5", "y": "5", "overflow": "visible"},
            width="110",
            height="26",
            view_box="0 0 " + spark[0].to(str) + " " + str(SPARK_SCALE),
            preserve_aspect_ratio="none",
        ),
        width="120",
        height="36",
        class_name="spark dir-" + dir7d.to(str),
        aria_hidden="true",
    )


# Radix Themes' own classes for a table row and cell, a size-1 round avatar and a link: the market rows
# are written as those plain elements. As components, each cell, row, avatar (with its image-loading
# state) and link was a React component that works out its props on every render: ~13 per row, most of
# a row's script time when /market first renders its rows (bench/browser.py).
_CELL = "rt-TableCell"
_AVATAR = "rt-reset rt-AvatarRoot rt-r-size-1 rt-variant-soft"
# Radix's high-contrast link without underline, on React Router's link (navigation inside the app); its
# hover colour, Reflex's, is the class `asset-link` of assets/cnop.css.
_LINK = "rt-Text rt-reset rt-Link rt-underline-none rt-high-contrast asset-link"


def _cell(*children: Any, class_name: str = "", **props: Any) -> rx.Component:
    return rx.el.td(*children, class_name=f"{_CELL} {class_name}".strip(), **props)


def _avatar(asset_id: Any, image: Any) -> rx.Component:
    """The coin's logo (CNOP's cached copy, see `cnop_app.api.logos`), or its first letter when it has none."""
    return rx.el.span(
        rx.cond(
            image != "",
            rx.el.img(src=image, alt="", class_name="rt-AvatarImage"),
            rx.el.span(asset_id[:1], class_name="rt-AvatarFallback rt-one-letter"),
        ),
        class_name=f"{_AVATAR} logo",
        custom_attrs={"data-radius": "full", "data-accent-color": ""},
    )


def _row(row: Any) -> rx.Component:
    # The row holds what rarely changes; the moving fields are looked up by asset id in maps that a
    # push replaces only when they changed (cnop_app/state/market.py). A table renders 100 of these:
    # cells are styled by the classes of assets/cnop.css, not per-element style props, and the exact
    # figures are native tooltips (title), so a row is plain elements the browser draws quickly.
    asset_id = row["id"].to(str)
    change = MarketState.changes[asset_id]
    mcap, volume = MarketState.mcaps[asset_id], MarketState.volumes[asset_id]
    flashed = MarketState.flash.contains(asset_id)
    return rx.el.tr(
        _cell(
            star_button(MarketState.starred.contains(asset_id), MarketState.toggle_star(asset_id), asset_id),
            class_name="star-cell",
        ),
        _cell(row["rank"], class_name="rank from-tablet"),
        _cell(
            ReactRouterLink.create(
                rx.el.span(
                    _avatar(asset_id, row["image"]),
                    rx.el.span(row["name"], class_name="asset-name"),
                    rx.el.span(row["id"], class_name="asset-id"),
                    rx.cond(row["active"] == "", rx.badge("paused", color_scheme="gray", size="1")),
                    class_name="asset",
                ),
                to="/market/" + asset_id,
                class_name=_LINK,
                custom_attrs={"data-accent-color": "gray"},
            ),
            class_name="asset-cell",  # a long name wraps on a phone instead of pushing the price away
        ),
        _cell(
            # Re-keyed per market version when the price changed, so the flash animation replays.
            rx.el.span(
                MarketState.prices[asset_id],
                class_name=rx.cond(flashed, "price-flash", ""),
                key=rx.cond(flashed, MarketState.flash[asset_id], asset_id),
            ),
            class_name="num",
            id="price-" + asset_id,
        ),
        _cell(signed(change[CHANGE24], change[DIR24])),
        _cell(signed(change[CHANGE7D], change[DIR7D]), class_name="from-tablet"),
        _cell(rx.el.span(mcap[COMPACT], title=mcap[EXACT]), class_name="num from-tablet"),
        _cell(rx.el.span(volume[COMPACT], title=volume[EXACT]), class_name="num from-desktop"),
        _cell(_sparkline(asset_id, change[DIR7D]), class_name="from-desktop"),
        key=row["id"],
        class_name="rt-TableRow market-row",
    )


def market() -> rx.Component:
    first = rx.cond(MarketState.all_rows, MarketState.rows.length(), FIRST_ROWS)
    return page(
        rx.hstack(
            rx.input(
                rx.input.slot(rx.icon("search", size=16)),
                placeholder="Search name or symbol",
                value=MarketState.search,
                on_change=MarketState.set_search.debounce(200),
                aria_label="Search assets",
                id="market-search",
                width="280px",
            ),
            rx.spacer(),
            rx.text("Prices as of ", rx.text.span(MarketState.as_of, id="prices-as-of"), size="2", color_scheme="gray"),
            rx.cond(
                MarketState.status_colour == "amber",
                rx.badge("stale: the feed is down, showing last good prices", color_scheme="amber"),
            ),
            width="100%",
            align="center",
            margin_bottom="1em",
            wrap="wrap",
        ),
        rx.cond(
            MarketState.error != "",
            rx.callout.root(
                rx.callout.icon(rx.icon("circle-alert")),
                rx.callout.text(MarketState.error, " ", rx.link("Retry", on_click=MarketState.load)),
                color_scheme="red",
                margin_bottom="1em",
            ),
        ),
        rx.cond(
            MarketState.loading,
            rx.vstack(*[rx.skeleton(height="36px", width="100%") for _ in range(8)], width="100%"),
            rx.cond(
                MarketState.rows.length() == 0,
                rx.callout("No assets match your search.", icon="info"),
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                rx.table.column_header_cell(
                                    rx.icon("star", size=14, aria_label="Watchlist"), padding_x="4px"
                                ),
                                _header("#", "rank", "left", "from-tablet"),
                                _header("Asset", "name", "left"),
                                _header("Price", "price"),
                                _header("24h", "change24"),
                                _header("7d", "change7d", class_name="from-tablet"),
                                _header("Market cap", "mcap", class_name="from-tablet"),
                                _header("Volume 24h", "volume", class_name="from-desktop"),
                                rx.table.column_header_cell(
                                    # In the look of the sorting headers beside it.
                                    rx.text("Last 7 days", size="1", weight="medium", color_scheme="gray"),
                                    class_name="from-desktop",
                                    vertical_align="middle",
                                ),
                            ),
                            style={"position": "sticky", "top": "0", "z_index": "1"},
                        ),
                        rx.table.body(rx.foreach(MarketState.rows[:first], _row)),
                        variant="surface",
                        size="1",
                        width="100%",
                        class_name="market-table",
                    ),
                    # Mounted with the first rows: asks for the rest.
                    rx.fragment(on_mount=MarketState.show_all_rows),
                    overflow_x="auto",
                    width="100%",
                ),
            ),
        ),
        title="Market",
    )
