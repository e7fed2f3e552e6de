"""The order history page: filters and newest-first pages."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cnop_app.components.layout import SELECT_STYLE, label_for, page, pager
from cnop_app.components.orders import orders_table
from cnop_app.domain.enums import OrderStatus, OrderType
from cnop_app.state.orders import ANY, OrdersState


def _select(options: list[tuple[str, str]], value: Any, on_change: Any, label: str, id: str) -> rx.Component:
    return rx.vstack(
        label_for(label, id),
        rx.el.select(
            *[rx.el.option(text, value=v) for v, text in options],
            id=id,
            value=value,
            on_change=on_change,
            style={**SELECT_STYLE, "width": "auto", "padding": "6px"},
        ),
        spacing="1",
    )


def orders() -> rx.Component:
    return page(
        rx.hstack(
            _select(
                [(ANY, "All"), *[(status.value, status.label) for status in OrderStatus]],
                OrdersState.status_filter,
                OrdersState.set_status_filter,
                "Status",
                "filter-status",
            ),
            _select(
                [(ANY, "All"), *[(order_type.value, order_type.label) for order_type in OrderType]],
                OrdersState.type_filter,
                OrdersState.set_type_filter,
                "Type",
                "filter-type",
            ),
            rx.vstack(
                label_for("Asset", "filter-asset"),
                rx.input(
                    id="filter-asset",
                    placeholder="e.g. BTC",
                    on_change=OrdersState.set_asset_filter.debounce(300),
                    width="120px",
                ),
                spacing="1",
            ),
            spacing="4",
            align="end",
            margin_bottom="1em",
            wrap="wrap",
        ),
        rx.cond(OrdersState.error != "", rx.text(OrdersState.error, color_scheme="red")),
        rx.cond(
            OrdersState.loading,
            rx.skeleton(height="300px", width="100%"),
            orders_table(OrdersState.orders, empty="No orders match. Place one on the Trade page."),
        ),
        rx.box(pager(OrdersState), margin_top="1em"),
        title="Orders",
    )
