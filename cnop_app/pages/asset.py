"""The asset page: details, the price chart and the way to trade it.

A module of its own so that the market table's page does not load the chart library: Reflex bundles the
components of a page module together.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from cnop_app.components.charts import area_chart, range_switcher
from cnop_app.components.figures import signed, star_button
from cnop_app.components.layout import TABULAR, page
from cnop_app.state.market import AssetState


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
            area_chart(AssetState.chart, "price", 300, "Not enough price history yet for this range."),
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
                                star_button(AssetState.starred, AssetState.toggle_star, AssetState.current_id),
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
