"""The trade page: the order ticket, its confirmation and the open orders."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cnop_app.components.layout import SELECT_STYLE, TABULAR, label_for, page
from cnop_app.components.orders import orders_table
from cnop_app.domain.trading import EXPIRY_CHOICES
from cnop_app.state.trade import TradeState


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
