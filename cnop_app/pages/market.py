"""Market table (live) and the asset page."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cnop_app.components.charts import area_chart, range_switcher
from cnop_app.components.figures import direction_colour, signed
from cnop_app.components.layout import TABULAR, page
from cnop_app.state.market import SPARK_SCALE, AssetState, MarketState
from cnop_app.state.rows import CHANGE7D, CHANGE24, COMPACT, DIR7D, DIR24, EXACT

# On a phone the table shows the star, the asset, its price and the 24h change; the rest appears on
# wider screens (and the table still scrolls sideways inside its box if it must).
FROM_TABLET = rx.breakpoints(initial="none", sm="table-cell")
FROM_DESKTOP = rx.breakpoints(initial="none", md="table-cell")


def star_button(starred: Any, on_click: Any, asset_id: Any, size: int = 16) -> rx.Component:
    """The watchlist star: filled when starred."""
    return rx.icon_button(
        rx.icon(
            "star",
            size=size,
            fill=rx.cond(starred, "currentColor", "none"),
        ),
        variant="ghost",
        size="1",
        color_scheme=rx.cond(starred, "amber", "gray"),
        on_click=on_click,
        aria_label=rx.cond(starred, "Remove from watchlist", "Add to watchlist"),
        aria_pressed=rx.cond(starred, "true", "false"),
        class_name="watch-star",
        id="star-" + asset_id,
    )


def _header(label: str, key: str, align: str = "right", display: Any = None) -> rx.Component:
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
        display=display,
    )


def _sparkline(asset_id: Any, dir7d: Any) -> rx.Component:
    """The 7-day line: 120 x 36 px, drawn inside a 5 px margin, 1.5 px wide in the 7d change's colour."""
    spark = MarketState.sparks[asset_id]
    return rx.el.svg(
        rx.el.svg(
            rx.el.svg.polyline(
                points=spark[1],
                fill="none",
                stroke=direction_colour(dir7d),
                stroke_width="1.5",
                vector_effect="non-scaling-stroke",  # the line keeps its width however the box is scaled
            ),
            custom_attrs={"x": "5", "y": "5"},  # attributes: as style they would not place the box
            width="110",
            height="26",
            view_box="0 0 " + spark[0].to(str) + " " + str(SPARK_SCALE),
            preserve_aspect_ratio="none",
            overflow="visible",
        ),
        width="120",
        height="36",
        display="block",
        aria_hidden="true",
    )


def _row(row: Any) -> rx.Component:
    # The row holds what rarely changes; the moving fields are looked up by asset id in maps that a
    # push replaces only when they changed (cnop_app/state/market.py).
    asset_id = row["id"].to(str)
    change = MarketState.changes[asset_id]
    mcap, volume = MarketState.mcaps[asset_id], MarketState.volumes[asset_id]
    flashed = MarketState.flash.contains(asset_id)
    return rx.table.row(
        rx.table.cell(
            star_button(MarketState.starred.contains(asset_id), MarketState.toggle_star(asset_id), asset_id),
            padding_x="4px",
            width="28px",
        ),
        rx.table.cell(row["rank"], style=TABULAR, color=rx.color("gray", 11), display=FROM_TABLET),
        rx.table.cell(
            rx.link(
                rx.hstack(
                    rx.avatar(
                        src=row["image"],
                        fallback=asset_id[:1],
                        size="1",
                        radius="full",
                        display=rx.breakpoints(initial="none", xs="inline-flex"),
                    ),
                    rx.text(row["name"], weight="medium"),
                    rx.text(row["id"], color_scheme="gray", size="1", display=FROM_TABLET),
                    rx.cond(row["active"] == "", rx.badge("paused", color_scheme="gray", size="1")),
                    align="center",
                    spacing="2",
                ),
                href="/market/" + asset_id,
                underline="none",
                color_scheme="gray",
                high_contrast=True,
            ),
            white_space="normal",  # a long name wraps on a phone instead of pushing the price away
        ),
        rx.table.cell(
            # Re-keyed per market version when the price changed, so the flash animation replays.
            rx.text(
                MarketState.prices[asset_id],
                class_name=rx.cond(flashed, "price-flash", ""),
                style=TABULAR,
                key=rx.cond(flashed, MarketState.flash[asset_id], asset_id),
            ),
            text_align="right",
            id="price-" + asset_id,
        ),
        rx.table.cell(signed(change[CHANGE24], change[DIR24])),
        rx.table.cell(signed(change[CHANGE7D], change[DIR7D]), display=FROM_TABLET),
        rx.table.cell(
            rx.tooltip(rx.text(mcap[COMPACT], style=TABULAR), content=mcap[EXACT]),
            text_align="right",
            display=FROM_TABLET,
        ),
        rx.table.cell(
            rx.tooltip(rx.text(volume[COMPACT], style=TABULAR), content=volume[EXACT]),
            text_align="right",
            display=FROM_DESKTOP,
        ),
        rx.table.cell(_sparkline(asset_id, change[DIR7D]), display=FROM_DESKTOP),
        key=row["id"],
        class_name="market-row",
    )


def market() -> rx.Component:
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
                                _header("#", "rank", "left", FROM_TABLET),
                                _header("Asset", "name", "left"),
                                _header("Price", "price"),
                                _header("24h", "change24"),
                                _header("7d", "change7d", display=FROM_TABLET),
                                _header("Market cap", "mcap", display=FROM_TABLET),
                                _header("Volume 24h", "volume", display=FROM_DESKTOP),
                                rx.table.column_header_cell(
                                    # In the look of the sorting headers beside it.
                                    rx.text("Last 7 days", size="1", weight="medium", color_scheme="gray"),
                                    display=FROM_DESKTOP,
                                    vertical_align="middle",
                                ),
                            ),
                            style={"position": "sticky", "top": "0", "z_index": "1"},
                        ),
                        rx.table.body(rx.foreach(MarketState.rows, _row)),
                        variant="surface",
                        size="1",
                        width="100%",
                    ),
                    overflow_x="auto",
                    width="100%",
                ),
            ),
        ),
        title="Market",
    )


def _stat_line(label: str, value: Any) -> rx.Component:
    return rx.hstack(
        rx.text(label, color_scheme="gray", size="2"),
        rx.spacer(),
        rx.text(value, size="2", style=TABULAR, weight="medium"),
        width="100%",
    )


def _chart() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                range_switcher(AssetState.chart_range, AssetState.set_range),
                rx.spacer(),
                rx.cond(AssetState.chart_change != "", signed(AssetState.chart_change, AssetState.chart_dir)),
                width="100%",
                align="center",
            ),
            rx.cond(
                AssetState.chart.length() < 2,
                rx.center(rx.text("Not enough price history yet for this range.", color_scheme="gray"), height="280px"),
                area_chart(AssetState.chart, "price", 300),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def asset() -> rx.Component:
    d = AssetState.detail
    return page(
        rx.cond(
            ~AssetState.found,
            rx.callout.root(
                rx.callout.icon(rx.icon("circle-alert")),
                rx.callout.text("No such asset. ", rx.link("Back to the market", href="/market")),
                color_scheme="red",
                id="asset-not-found",
            ),
            rx.cond(
                AssetState.loading,
                rx.skeleton(height="400px", width="100%"),
                rx.vstack(
                    rx.hstack(
                        rx.avatar(src=d["image"], fallback=AssetState.current_id[:3], size="4", radius="full"),
                        rx.vstack(
                            rx.hstack(
                                rx.heading(
                                    d["name"],
                                    " ",
                                    rx.text.span(AssetState.current_id, color=rx.color("gray", 10)),
                                    size="7",
                                ),
                                star_button(AssetState.starred, AssetState.toggle_star, AssetState.current_id, 20),
                                align="center",
                                spacing="2",
                            ),
                            rx.text(
                                "Rank #", d["rank"], " · updated ", d["last_updated"], size="2", color_scheme="gray"
                            ),
                            spacing="0",
                        ),
                        rx.spacer(),
                        rx.vstack(
                            rx.heading(d["price"], size="7", id="asset-price", style=TABULAR),
                            signed(d["change24"], d["dir24"]),
                            align="end",
                            spacing="0",
                        ),
                        width="100%",
                        align="center",
                        wrap="wrap",
                    ),
                    rx.cond(
                        d["stale"] == "yes",
                        rx.callout("This price is stale: the feed is down.", icon="clock", color_scheme="amber"),
                    ),
                    rx.hstack(
                        rx.link(
                            rx.button("Buy", size="3", color_scheme="grass", id="asset-buy"),
                            href="/trade?asset=" + AssetState.current_id + "&side=buy",
                        ),
                        rx.link(
                            rx.button("Sell", size="3", color_scheme="tomato", variant="soft", id="asset-sell"),
                            href="/trade?asset=" + AssetState.current_id + "&side=sell",
                        ),
                        rx.cond(d["status"] != "available", rx.badge("trading paused", color_scheme="gray")),
                        spacing="3",
                    ),
                    rx.grid(
                        _chart(),
                        rx.card(
                            rx.vstack(
                                _stat_line("Market cap", d["mcap"]),
                                _stat_line("Volume 24h", d["volume"]),
                                _stat_line("24h high", d["high24"]),
                                _stat_line("24h low", d["low24"]),
                                _stat_line("Change 24h", d["change_abs24"]),
                                _stat_line("Change 7d", d["change7d"]),
                                _stat_line("Change 30d", d["change30d"]),
                                _stat_line("Circulating supply", d["circulating"]),
                                _stat_line("Total supply", d["total_supply"]),
                                _stat_line("Max supply", d["max_supply"]),
                                _stat_line("All-time high", d["ath"]),
                                _stat_line("ATH change / date", d["ath_change"] + " · " + d["ath_date"]),
                                _stat_line("All-time low", d["atl"]),
                                _stat_line("ATL change / date", d["atl_change"] + " · " + d["atl_date"]),
                                spacing="2",
                                width="100%",
                            ),
                            width="100%",
                        ),
                        columns=rx.breakpoints(initial="1", md="3fr 2fr"),
                        spacing="4",
                        width="100%",
                    ),
                    spacing="4",
                    width="100%",
                ),
            ),
        ),
    )
