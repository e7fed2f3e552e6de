"""The typed rows and panels the admin pages show (formatted texts; see `cnop_app.state.rows`)."""

from __future__ import annotations

import json
from typing import Any, TypedDict

from cnop_app import formatting
from cnop_app.services import admin, trading
from cnop_app.state.trading_common import order_row


class OverviewFigures(TypedDict, total=False):
    generated: str
    users_hint: str
    active_hint: str
    sessions_hint: str
    orders_hint: str
    users_total: str
    users_active_now: str
    users_signed_in: str
    users_new_today: str
    users_disabled: str
    users_admins: str
    sessions_open: str
    orders_today: str
    fills_today: str
    volume_today: str
    open_limit_orders: str
    feed_source: str
    feed_label: str
    feed_colour: str
    feed_as_of: str
    feed_as_of_exact: str
    feed_breaker: str
    feed_breaker_colour: str
    feed_outcome: str
    feed_error: str
    feed_failures: str
    feed_mode: str
    feed_interval: str
    feed_next: str
    feed_next_exact: str
    mirror_enabled: str  # "yes" or ""
    mirror_status: str
    mirror_colour: str
    mirror_depth: str
    mirror_lag: str
    mirror_failing: str
    mirror_reachable: str
    mirror_error: str
    db_backend: str
    db_size: str


class ErrorRow(TypedDict):
    when: str
    exact: str
    logger: str
    message: str
    error: str
    request_id: str


class IntegritySummary(TypedDict, total=False):
    ok: str  # "yes" or ""
    ran: str  # "yes" once a check ran
    summary: str
    counts: str
    checked: str


class DifferenceRow(TypedDict):
    where: str
    figure: str
    stored: str
    expected: str
    note: str


class AdminUserRow(TypedDict):
    username: str
    name: str
    email: str
    role: str
    active: str  # "yes" or ""
    created: str
    created_exact: str
    cash: str
    available: str


class UserProfile(TypedDict, total=False):
    username: str
    name: str
    email: str
    phone: str
    date_of_birth: str
    role: str
    active: str  # "yes" or ""
    created: str
    created_exact: str
    updated_exact: str
    cash: str
    held: str
    available: str
    equity: str
    holdings_value: str
    unrealized: str
    unrealized_dir: str
    realized: str
    blocked_until: str  # "" when no failed-login delay blocks the user


class AuditRow(TypedDict):
    id: str
    when: str
    exact: str
    event_type: str
    username: str
    actor: str
    ip: str
    target: str
    reason: str
    detail: str
    request_id: str


class AdminAssetRow(TypedDict):
    id: str
    name: str
    image: str
    active: str  # "yes" or ""
    price: str
    rank: str
    source: str
    updated: str
    updated_exact: str
    stale: str  # "yes" or ""
    open_orders: str


class AdminOrderRow(TypedDict):
    id: str
    short_id: str
    user: str
    type: str
    side: str
    asset: str
    quantity: str
    price: str
    total: str
    status: str
    status_colour: str
    when: str
    exact: str
    pending: str  # "yes" when it can still be cancelled


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def counted(value: int, singular: str, plural: str | None = None) -> str:
    """'1 fill', '3 fills'."""
    return f"{value:,} {singular if value == 1 else plural or singular + 's'}"


def size_text(size: int | None) -> str:
    """1.2 MB, 345 KB, 512 B."""
    if size is None:
        return "—"
    amount = float(size)  # display only
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:,.0f} {unit}" if unit == "B" else f"{amount:,.1f} {unit}"
        amount /= 1024
    return f"{amount:,.1f} GB"


def seconds_text(seconds: float | int | None) -> str:
    if seconds is None:
        return "—"
    value = float(seconds)
    if value < 90:
        return f"{value:,.0f} s"
    if value < 5400:
        return f"{value / 60:,.0f} min"
    return f"{value / 3600:,.1f} h"


def _detail_text(detail: dict[str, Any]) -> str:
    rest = {k: v for k, v in detail.items() if k not in ("target", "reason")}
    return json.dumps(rest, sort_keys=True, default=str)[:300] if rest else ""


def audit_row(view: admin.AuditView) -> AuditRow:
    detail = view.detail
    return AuditRow(
        id=str(view.id),
        when=formatting.relative_time(view.at),
        exact=formatting.utc_exact(view.at),
        event_type=view.event_type,
        username=view.username or "",
        actor=view.actor or "",
        ip=view.ip or "",
        target=str(detail.get("target", "") or ""),
        reason=str(detail.get("reason", "") or ""),
        detail=_detail_text(detail),
        request_id=view.request_id or "",
    )


def admin_order_row(o: trading.OrderView) -> AdminOrderRow:
    row = order_row(o)
    return AdminOrderRow(
        id=row["id"],
        short_id=row["short_id"],
        user=o.username,
        type=row["type"],
        side=row["side"],
        asset=row["asset"],
        quantity=row["quantity"],
        price=row["price"],
        total=row["total"],
        status=row["status"],
        status_colour=row["status_colour"],
        when=row["when"],
        exact=row["exact"],
        pending="yes" if o.status == "pending" else "",
    )
