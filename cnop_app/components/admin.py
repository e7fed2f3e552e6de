"""Pieces every admin page shares: the console's tabs, figures, numbered pages and the confirmation
dialog that asks for a reason."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cnop_app.components.layout import SELECT_STYLE, TABULAR, label_for, page
from cnop_app.domain.admin import MAX_REASON

ADMIN_TABS = (
    ("overview", "Overview", "/admin"),
    ("users", "Users", "/admin/users"),
    ("assets", "Assets", "/admin/assets"),
    ("orders", "Orders", "/admin/orders"),
    ("audit", "Audit log", "/admin/audit"),
)


def admin_tabs(active: str) -> rx.Component:
    return rx.hstack(
        *[
            rx.link(
                rx.button(
                    label,
                    variant="solid" if key == active else "soft",
                    color_scheme="indigo" if key == active else "gray",
                    size="2",
                ),
                href=href,
                underline="none",
                id=f"admin-tab-{key}",
                aria_current="page" if key == active else None,
            )
            for key, label, href in ADMIN_TABS
        ],
        spacing="2",
        wrap="wrap",
        margin_bottom="1.25em",
        role="navigation",
        aria_label="Admin console",
    )


def admin_page(active: str, *children: rx.Component, title: str, max_width: str = "1280px") -> rx.Component:
    return page(admin_tabs(active), *children, title=title, max_width=max_width)


def figure(label: str, value: Any, *, id: str, hint: Any = None) -> rx.Component:
    """A small labelled number card."""
    return rx.card(
        rx.vstack(
            rx.text(label, size="1", color_scheme="gray", weight="medium"),
            rx.heading(value, size="5", id=id, style=TABULAR),
            rx.text(hint, size="1", color_scheme="gray") if hint is not None else rx.fragment(),
            spacing="1",
        ),
        width="100%",
    )


def line(label: str, value: Any, **props: Any) -> rx.Component:
    """A label and its value on one line of a panel."""
    return rx.hstack(
        rx.text(label, size="2", color_scheme="gray"),
        rx.spacer(),
        rx.text(value, size="2", style=TABULAR, weight="medium", text_align="right", **props),
        width="100%",
        align="center",
    )


def header(*labels: str | tuple[str, str]) -> rx.Component:
    """A table header; a (label, "right") pair right-aligns a numeric column."""
    cells = []
    for item in labels:
        label, align = item if isinstance(item, tuple) else (item, "left")
        cells.append(rx.table.column_header_cell(label, text_align=align))
    return rx.table.header(rx.table.row(*cells))


def table(head: rx.Component, body: rx.Component, **props: Any) -> rx.Component:
    """A dense table that scrolls sideways inside its card instead of being cut off."""
    return rx.box(
        rx.table.root(head, body, variant="surface", size="1", width="100%"),
        overflow_x="auto",
        width="100%",
        max_width="100%",
        **props,
    )


def empty(text: str, id: str = "") -> rx.Component:
    return rx.text(text, color_scheme="gray", size="2", id=id or None)


def num_pager(state: Any, *, id_prefix: str) -> rx.Component:
    """Previous / page x of y / Next for an `AdminPagerMixin` state."""
    return rx.hstack(
        rx.text(state.total, " in all", size="2", color_scheme="gray", id=f"{id_prefix}-total"),
        rx.spacer(),
        rx.button(
            "Previous",
            on_click=state.prev_page,
            disabled=~state.has_prev,
            variant="soft",
            size="1",
            id=f"{id_prefix}-prev",
        ),
        rx.text("Page ", state.page + 1, " of ", state.page_count, size="2", style=TABULAR),
        rx.button(
            "Next", on_click=state.next_page, disabled=~state.has_next, variant="soft", size="1", id=f"{id_prefix}-next"
        ),
        spacing="3",
        align="center",
        width="100%",
        margin_top="0.75em",
    )


def reason_field(default: str = "") -> rx.Component:
    return rx.vstack(
        label_for("Reason (required, kept in the audit log)", "action-reason"),
        rx.text_area(
            id="action-reason",
            name="reason",
            required=True,
            max_length=MAX_REASON,
            placeholder="Why? e.g. support ticket #123",
            default_value=default,
            rows="3",
            width="100%",
        ),
        spacing="1",
        width="100%",
    )


def reason_dialog(
    state: Any,
    *,
    title: Any,
    description: Any,
    confirm_label: Any,
    on_submit: Any,
    fields: rx.Component | None = None,
    colour: Any = "indigo",
    reason_default: str = "",
) -> rx.Component:
    """The confirmation of an admin action: what will happen, the action's own inputs, a required reason.
    Open while `state.pending` is set; a refusal shows inside it and keeps it open."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(title),
            rx.dialog.description(description, size="2", id="action-description"),
            rx.form(
                rx.vstack(
                    fields if fields is not None else rx.fragment(),
                    reason_field(reason_default),
                    rx.cond(
                        state.action_error != "",
                        rx.callout(
                            state.action_error,
                            icon="triangle-alert",
                            color_scheme="red",
                            role="alert",
                            id="action-error",
                            width="100%",
                        ),
                    ),
                    rx.hstack(
                        rx.button(
                            "Cancel",
                            type="button",
                            variant="soft",
                            color_scheme="gray",
                            on_click=state.cancel_action,
                            id="action-cancel",
                        ),
                        rx.button(confirm_label, type="submit", color_scheme=colour, id="action-confirm"),
                        spacing="3",
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                    width="100%",
                    margin_top="1em",
                ),
                on_submit=on_submit,
                reset_on_submit=False,
            ),
            max_width="520px",
        ),
        open=state.pending != "",
        on_open_change=state.dialog_open_change,
    )


def badge_yes(flag: Any, yes: str, no: str, yes_colour: str = "green", no_colour: str = "gray") -> rx.Component:
    return rx.cond(flag == "yes", rx.badge(yes, color_scheme=yes_colour), rx.badge(no, color_scheme=no_colour))


def text_filter(
    label: str, name: str, value: Any, placeholder: str = "", width: str = "140px", **props: Any
) -> rx.Component:
    input_id = f"filter-{name}"
    return rx.vstack(
        label_for(label, input_id),
        rx.input(id=input_id, name=name, default_value=value, placeholder=placeholder, width=width, **props),
        spacing="1",
    )


def select_filter(label: str, name: str, options: list[tuple[str, str]] | Any, value: Any) -> rx.Component:
    input_id = f"filter-{name}"
    if isinstance(options, list):
        items = [rx.el.option(text, value=v) for v, text in options]
    else:
        items = [rx.el.option("All", value=""), rx.foreach(options, lambda t: rx.el.option(t, value=t))]
    return rx.vstack(
        label_for(label, input_id),
        rx.el.select(
            *items,
            id=input_id,
            name=name,
            default_value=value,
            style={**SELECT_STYLE, "width": "auto", "height": "32px", "padding": "0 8px", "font_size": "14px"},
        ),
        spacing="1",
    )


def filter_form(state: Any, *fields: rx.Component, key: Any, extra: rx.Component | None = None) -> rx.Component:
    return rx.form(
        rx.hstack(
            *fields,
            rx.hstack(
                rx.button("Apply", type="submit", id="filters-apply"),
                rx.button(
                    "Clear",
                    type="button",
                    variant="soft",
                    color_scheme="gray",
                    on_click=state.clear_filters,
                    id="filters-clear",
                ),
                extra or rx.fragment(),
                spacing="2",
            ),
            spacing="3",
            align="end",
            wrap="wrap",
        ),
        on_submit=state.apply_filters,
        reset_on_submit=False,
        key=key,  # re-mounted with the current filters after Clear or a link with ?user=
        margin_bottom="1em",
    )
