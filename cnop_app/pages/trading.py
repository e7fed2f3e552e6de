"""Trade ticket, portfolio, order history and dashboard pages."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cnop_app.components.charts import area_chart, range_switcher
from cnop_app.components.figures import signed
from cnop_app.components.layout import TABULAR, label_for, page, pager, stat
from cnop_app.domain.enums import OrderStatus, OrderType
from cnop_app.domain.trading import EXPIRY_CHOICES
from cnop_app.state.trading import ANY, DashboardState, OrdersState, PortfolioState, TradeState

SELECT_STYLE = {
    "width": "100%",
    "padding": "8px",
    "border_radius": "6px",
    "border": f"1px solid {rx.color('gray', 7)}",
    "background": rx.color("gray", 1),
}
PIE_COLOURS = ["#3e63dd", "#30a46c", "#f76b15", "#8e4ec6", "#e5484d", "#12a594", "#ffc53d", "#6e56cf", "#8d8d8d"]


def _decimal_input(label: str, input_id: str, value: Any, on_change: Any) -> tuple[rx.Component, rx.Component]:
    """A labelled numeric text input (text, not type=number: exact decimals, no float rounding)."""
    return (
        label_for(label, input_id),
        rx.input(
            id=input_id,
            value=value,
            on_change=on_change,
            input_mode="decimal",
            placeholder="0.00",
            width="100%",
            size="3",
        ),
    )


def _error(key: str) -> rx.Component:
    return rx.cond(
        TradeState.ticket_errors[key],
        rx.text(TradeState.ticket_errors[key], color_scheme="red", size="2", role="alert", id=f"ticket-error-{key}"),
    )


def _preview_line(label: str, key: str, strong: bool = False) -> rx.Component:
    return rx.hstack(
        rx.text(label, size="2", color_scheme="gray"),
        rx.spacer(),
        rx.text(
            TradeState.preview[key], size="2", weight="bold" if strong else "medium", style=TABULAR, id=f"preview-{key}"
        ),
        width="100%",
    )


def _ticket() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Order ticket", size="4"),
            label_for("Asset", "ticket-asset"),
            rx.el.select(
                rx.foreach(TradeState.assets, lambda a: rx.el.option(a["label"], value=a["id"])),
                id="ticket-asset",
                value=TradeState.asset_id,
                on_change=TradeState.set_asset,
                style=SELECT_STYLE,
            ),
            rx.segmented_control.root(
                rx.segmented_control.item("Buy", value="buy"),
                rx.segmented_control.item("Sell", value="sell"),
                value=TradeState.side,
                on_change=TradeState.set_side,
                width="100%",
                id="ticket-side",
            ),
            rx.segmented_control.root(
                rx.segmented_control.item("Market", value="market"),
                rx.segmented_control.item("Limit", value="limit"),
                value=TradeState.kind,
                on_change=TradeState.set_kind,
                width="100%",
                id="ticket-kind",
            ),
            rx.cond(
                TradeState.kind == "limit",
                rx.vstack(
                    *_decimal_input("Limit price (USD)", "ticket-limit", TradeState.limit_input, TradeState.set_limit),
                    _error("price"),
                    label_for("Good until", "ticket-expiry"),
                    rx.el.select(
                        *[rx.el.option(label, value=key) for key, (label, _) in EXPIRY_CHOICES.items()],
                        id="ticket-expiry",
                        value=TradeState.expiry,
                        on_change=TradeState.set_expiry,
                        style=SELECT_STYLE,
                    ),
                    _error("expires_at"),
                    width="100%",
                    spacing="2",
                ),
            ),
            rx.hstack(
                rx.text("Amount in", size="2"),
                rx.segmented_control.root(
                    rx.segmented_control.item("Quantity", value="quantity"),
                    rx.segmented_control.item("USD", value="usd"),
                    value=TradeState.amount_mode,
                    on_change=TradeState.set_amount_mode,
                    size="1",
                ),
                align="center",
            ),
            rx.cond(
                TradeState.amount_mode == "quantity",
                rx.vstack(
                    *_decimal_input("Quantity", "ticket-quantity", TradeState.quantity_input, TradeState.set_quantity),
                    width="100%",
                    spacing="1",
                ),
                rx.vstack(
                    *_decimal_input("Amount (USD)", "ticket-usd", TradeState.usd_input, TradeState.set_usd),
                    width="100%",
                    spacing="1",
                ),
            ),
            _error("quantity"),
            rx.separator(),
            _preview_line("Market price", "market_price"),
            _preview_line("Price", "price"),
            _preview_line("Quantity", "quantity"),
            _preview_line("Value", "gross"),
            _preview_line("Fee", "fee"),
            _preview_line("Total", "total", strong=True),
            _preview_line("Available cash", "cash"),
            _preview_line("Cash after", "cash_after"),
            _preview_line("Holding after", "qty_after"),
            _error("form"),
            _error("order_type"),
            _error("asset_id"),
            rx.button(
                rx.cond(TradeState.side == "buy", "Review buy", "Review sell"),
                on_click=TradeState.review,
                width="100%",
                size="3",
                color_scheme=rx.cond(TradeState.side == "buy", "grass", "tomato"),
                id="ticket-review",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def _confirm() -> rx.Component:
    p = TradeState.preview
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Confirm order"),
            rx.alert_dialog.description(
                rx.vstack(
                    rx.text(
                        rx.cond(TradeState.side == "buy", "Buy ", "Sell "),
                        rx.text.strong(p["quantity"], " ", TradeState.asset_id),
                        rx.cond(
                            TradeState.kind == "limit",
                            rx.text.span(" with a limit of ", p["price"]),
                            rx.text.span(" at about ", p["price"]),
                        ),
                    ),
                    rx.text("Fee ", p["fee"], " · total ", rx.text.strong(p["total"])),
                    id="confirm-order-text",
                    spacing="1",
                ),
            ),
            rx.hstack(
                rx.alert_dialog.cancel(
                    rx.button("Cancel", variant="soft", color_scheme="gray", on_click=TradeState.cancel_review)
                ),
                rx.alert_dialog.action(
                    rx.button(
                        "Place order",
                        on_click=TradeState.confirm,
                        loading=TradeState.submitting,
                        disabled=TradeState.submitting,
                        id="confirm-order",
                    )
                ),
                spacing="3",
                justify="end",
                margin_top="1em",
            ),
        ),
        open=TradeState.confirming,
    )


def orders_table(rows: Any, cancel: Any = None, empty: str = "No orders yet.") -> rx.Component:
    headers = ["When", "Order", "Asset", "Quantity", "Price", "Total", "Status"] + ([""] if cancel else [])
    return rx.cond(
        rows.length() == 0,
        rx.text(empty, color_scheme="gray", id="orders-empty"),
        rx.box(
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(
                                h, text_align="right" if h in ("Quantity", "Price", "Total") else "left"
                            )
                            for h in headers
                        ]
                    )
                ),
                rx.table.body(
                    rx.foreach(
                        rows,
                        lambda o: rx.table.row(
                            rx.table.cell(rx.tooltip(rx.text(o["when"]), content=o["exact"])),
                            rx.table.cell(
                                rx.text(
                                    o["type"],
                                    color=rx.cond(o["side"] == "buy", rx.color("grass", 11), rx.color("tomato", 11)),
                                )
                            ),
                            rx.table.cell(rx.link(o["asset"], href="/market/" + o["asset"].to(str))),
                            rx.table.cell(o["quantity"], text_align="right", style=TABULAR),
                            rx.table.cell(o["price"], text_align="right", style=TABULAR),
                            rx.table.cell(o["total"], text_align="right", style=TABULAR),
                            rx.table.cell(
                                rx.badge(o["status"], color_scheme=o["status_colour"]), class_name="order-status"
                            ),
                            *(
                                [
                                    rx.table.cell(
                                        rx.button(
                                            "Cancel",
                                            size="1",
                                            variant="soft",
                                            color_scheme="red",
                                            on_click=cancel(o["id"]),
                                            aria_label="Cancel order",
                                        )
                                    )
                                ]
                                if cancel
                                else []
                            ),
                            class_name="order-row",
                        ),
                    )
                ),
                width="100%",
                variant="surface",
                size="1",
            ),
            overflow_x="auto",
            width="100%",
        ),
    )


def trade() -> rx.Component:
    return page(
        rx.cond(
            TradeState.notice != "",
            rx.callout.root(
                rx.callout.icon(rx.icon("bell")),
                rx.callout.text(TradeState.notice, " ", rx.link("dismiss", on_click=TradeState.dismiss_notice)),
                color_scheme="green",
                id="fill-notice",
                margin_bottom="1em",
            ),
        ),
        rx.grid(
            _ticket(),
            rx.card(
                rx.vstack(
                    rx.heading("Open orders", size="4"),
                    orders_table(
                        TradeState.open_orders,
                        TradeState.cancel_order,
                        "No open orders. Limit orders rest here until they fill, expire or you cancel them.",
                    ),
                    spacing="3",
                    width="100%",
                ),
                width="100%",
            ),
            columns=rx.breakpoints(initial="1", md="380px 1fr"),
            spacing="4",
            width="100%",
        ),
        _confirm(),
        title="Trade",
    )


def holdings_table() -> rx.Component:
    return rx.cond(
        PortfolioState.holdings.length() == 0,
        rx.callout.root(
            rx.callout.text("No holdings yet — ", rx.link("buy your first asset", href="/trade"), "."),
            id="holdings-empty",
        ),
        rx.box(
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(h, text_align="left" if h == "Asset" else "right")
                            for h in (
                                "Asset",
                                "Quantity",
                                "Avg cost",
                                "Price",
                                "Value",
                                "Unrealized P&L",
                                "Realized",
                                "Allocation",
                            )
                        ]
                    )
                ),
                rx.table.body(
                    rx.foreach(
                        PortfolioState.holdings,
                        lambda h: rx.table.row(
                            rx.table.cell(
                                rx.link(
                                    h["name"],
                                    " ",
                                    rx.text.span(h["id"], color=rx.color("gray", 10)),
                                    href="/market/" + h["id"].to(str),
                                )
                            ),
                            rx.table.cell(h["quantity"], text_align="right", style=TABULAR),
                            rx.table.cell(h["avg_cost"], text_align="right", style=TABULAR),
                            rx.table.cell(h["price"], text_align="right", style=TABULAR),
                            rx.table.cell(h["value"], text_align="right", style=TABULAR, id="value-" + h["id"].to(str)),
                            rx.table.cell(signed(h["pnl"] + " (" + h["pnl_pct"] + ")", h["pnl_dir"])),
                            rx.table.cell(h["realized"], text_align="right", style=TABULAR),
                            rx.table.cell(h["allocation"], text_align="right", style=TABULAR),
                            class_name="holding-row",
                        ),
                    )
                ),
                width="100%",
                variant="surface",
                size="1",
            ),
            overflow_x="auto",
            width="100%",
        ),
    )


def _allocation_chart(state: type[PortfolioState] | type[DashboardState] = PortfolioState) -> rx.Component:
    return rx.recharts.pie_chart(
        rx.recharts.pie(
            rx.foreach(
                state.allocation,
                lambda _item, i: rx.recharts.cell(fill=rx.Var.create(PIE_COLOURS)[i % len(PIE_COLOURS)]),
            ),
            data=state.allocation,
            data_key="value",
            name_key="name",
            inner_radius="55%",
            outer_radius="85%",
            is_animation_active=False,
        ),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(),
        width="100%",
        height=260,
    )


def _value_chart() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading("Value over time", size="4"),
            rx.spacer(),
            range_switcher(PortfolioState.history_range, PortfolioState.set_history_range, size="1"),
            width="100%",
        ),
        rx.cond(
            PortfolioState.history.length() < 2,
            rx.center(rx.text("The chart fills in as prices refresh.", color_scheme="gray"), height="240px"),
            area_chart(PortfolioState.history, "value", 240),
        ),
        width="100%",
    )


def _totals(state: type[PortfolioState] | type[DashboardState]) -> rx.Component:
    t = state.totals
    return rx.grid(
        stat("Total equity", t["equity"], id="total-equity"),
        stat("Cash", t["cash"], id="total-cash", hint=rx.text("available ", t["available"])),
        stat("Holdings value", t["holdings_value"], id="holdings-value"),
        rx.card(
            rx.vstack(
                rx.text("Unrealized P&L", size="2", color_scheme="gray"),
                signed(t["unrealized"] + " (" + t["unrealized_pct"] + ")", t["unrealized_dir"], id="total-pnl"),
                rx.text("Realized ", t["realized"], size="1", color_scheme="gray"),
                spacing="1",
            ),
            width="100%",
        ),
        columns=rx.breakpoints(initial="1", sm="2", md="4"),
        spacing="4",
        width="100%",
    )


def portfolio() -> rx.Component:
    return page(
        rx.cond(
            PortfolioState.loading,
            rx.skeleton(height="400px", width="100%"),
            rx.vstack(
                _totals(PortfolioState),
                rx.card(holdings_table(), width="100%"),
                rx.grid(
                    rx.card(
                        rx.vstack(rx.heading("Allocation", size="4"), _allocation_chart(), width="100%"), width="100%"
                    ),
                    rx.card(_value_chart(), width="100%"),
                    columns=rx.breakpoints(initial="1", md="2"),
                    spacing="4",
                    width="100%",
                ),
                spacing="4",
                width="100%",
            ),
        ),
        title="Portfolio",
    )


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


def dashboard() -> rx.Component:
    return page(
        rx.cond(
            DashboardState.loading,
            rx.skeleton(height="400px", width="100%"),
            rx.vstack(
                _totals(DashboardState),
                rx.grid(
                    rx.card(
                        rx.vstack(
                            rx.heading("Recent fills", size="4"),
                            orders_table(DashboardState.recent, empty="No fills yet — place your first order."),
                            width="100%",
                        ),
                        width="100%",
                    ),
                    rx.card(
                        rx.vstack(
                            rx.heading("Top movers (24h)", size="4"),
                            rx.foreach(
                                DashboardState.movers,
                                lambda m: rx.hstack(
                                    rx.link(m["name"], href="/market/" + m["id"].to(str)),
                                    rx.spacer(),
                                    rx.text(m["price"], style=TABULAR),
                                    signed(m["change24"], m["dir24"]),
                                    width="100%",
                                    class_name="mover-row",
                                ),
                            ),
                            width="100%",
                        ),
                        width="100%",
                    ),
                    columns=rx.breakpoints(initial="1", md="2"),
                    spacing="4",
                    width="100%",
                ),
                rx.card(
                    rx.vstack(rx.heading("Allocation", size="4"), _allocation_chart(DashboardState), width="100%"),
                    width="100%",
                ),
                spacing="4",
                width="100%",
            ),
        ),
        title="Dashboard",
    )
