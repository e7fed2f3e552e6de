"""Bodies of /api/v1/admin: users, assets, orders, the audit log and the system overview."""

from __future__ import annotations

from typing import Any, Literal

from cnop_app.api.schemas.balance import LedgerEntryOut, LedgerPageOut
from cnop_app.api.schemas.common import ApiModel, Day, DecimalText, JsonNumber, Money, Timestamp
from cnop_app.api.schemas.market import MarketStatusOut
from cnop_app.api.schemas.trading import OrderOut, PortfolioOut
from cnop_app.services import admin, market, trading

MAX_DIFFERENCES_SHOWN = 100

# ---------------------------------------------------------------- users


class AdminUserOut(ApiModel):
    username: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    date_of_birth: Day | None
    role: str
    is_active: bool
    created_at: Timestamp
    updated_at: Timestamp
    cash: Money
    held_cash: Money
    available_cash: Money

    @classmethod
    def of(cls, user: admin.AdminUser) -> AdminUserOut:
        return cls.model_validate(user)


class UserPageOut(ApiModel):
    data: list[AdminUserOut]
    total_count: int
    limit: int
    offset: int
    has_more: bool

    @classmethod
    def of(cls, page: admin.UserPage) -> UserPageOut:
        return cls(
            data=[AdminUserOut.of(u) for u in page.rows],
            total_count=page.total,
            limit=page.limit,
            offset=page.offset,
            has_more=page.offset + len(page.rows) < page.total,
        )


class AuditEventOut(ApiModel):
    id: int
    at: Timestamp
    event_type: str
    username: str | None
    actor: str | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    target: str | None
    reason: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, event: admin.AuditView) -> AuditEventOut:
        detail = event.detail
        return cls(
            id=event.id,
            at=event.at,
            event_type=event.event_type,
            username=event.username,
            actor=event.actor,
            ip=event.ip,
            user_agent=event.user_agent,
            request_id=event.request_id,
            target=_text(detail.get("target")),
            reason=_text(detail.get("reason")),
            detail=detail,
        )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


class AuditPageOut(ApiModel):
    data: list[AuditEventOut]
    total_count: int
    limit: int
    offset: int
    has_more: bool

    @classmethod
    def of(cls, rows: list[admin.AuditView], total: int, limit: int, offset: int) -> AuditPageOut:
        return cls(
            data=[AuditEventOut.of(e) for e in rows],
            total_count=total,
            limit=limit,
            offset=offset,
            has_more=offset + len(rows) < total,
        )


class AdminSessionOut(ApiModel):
    session_id: str
    issued_at: Timestamp
    expires_at: Timestamp
    user_agent: str | None
    ip: str | None


class UserDetailOut(ApiModel):
    user: AdminUserOut
    portfolio: PortfolioOut
    open_orders: list[OrderOut]
    ledger: LedgerPageOut
    sessions: list[AdminSessionOut]
    audit: AuditPageOut
    login_blocked_until: Timestamp | None

    @classmethod
    def of(
        cls, detail: admin.UserDetail, ledger_limit: int, ledger_offset: int, audit_limit: int, audit_offset: int
    ) -> UserDetailOut:
        return cls(
            user=AdminUserOut.of(detail.user),
            portfolio=PortfolioOut.of(detail.portfolio),
            open_orders=[OrderOut.of(o) for o in detail.open_orders],
            ledger=LedgerPageOut.of(detail.ledger, detail.ledger_total, ledger_limit, ledger_offset),
            sessions=[
                AdminSessionOut(
                    session_id=s.jti, issued_at=s.issued_at, expires_at=s.expires_at, user_agent=s.user_agent, ip=s.ip
                )
                for s in detail.sessions
            ],
            audit=AuditPageOut.of(detail.audit, detail.audit_total, audit_limit, audit_offset),
            login_blocked_until=detail.login_blocked_until,
        )


class UserActionOut(ApiModel):
    message: str
    changed: bool
    revoked_sessions: int
    cleared_counters: int
    user: AdminUserOut

    @classmethod
    def of(cls, result: admin.UserActionResult) -> UserActionOut:
        return cls(
            message=result.message,
            changed=result.changed,
            revoked_sessions=result.revoked_sessions,
            cleared_counters=result.cleared_counters,
            user=AdminUserOut.of(result.user),
        )


class AdjustmentOut(ApiModel):
    """The `system_adjustment` ledger entry, and the user's cash after it."""

    entry: LedgerEntryOut
    user: AdminUserOut

    @classmethod
    def of(cls, result: admin.AdjustmentResult) -> AdjustmentOut:
        return cls(entry=LedgerEntryOut.model_validate(result.entry), user=AdminUserOut.of(result.user))


# ---------------------------------------------------------------- assets and the market


class AdminAssetOut(ApiModel):
    asset_id: str
    name: str
    image: str | None
    category: str
    is_active: bool
    price_usd: JsonNumber | None
    market_cap_rank: int | None
    source: str | None
    last_updated: Timestamp | None
    price_age_seconds: int | None
    stale: bool
    open_orders: int

    @classmethod
    def of(cls, asset: admin.AdminAsset) -> AdminAssetOut:
        return cls.model_validate(asset)


class AdminAssetListOut(ApiModel):
    data: list[AdminAssetOut]
    total_count: int
    active_count: int

    @classmethod
    def of(cls, assets: list[admin.AdminAsset]) -> AdminAssetListOut:
        return cls(
            data=[AdminAssetOut.of(a) for a in assets],
            total_count=len(assets),
            active_count=sum(1 for a in assets if a.is_active),
        )


class AssetChangeOut(ApiModel):
    message: str
    changed: bool
    data: AdminAssetOut

    @classmethod
    def of(cls, change: admin.AssetChange) -> AssetChangeOut:
        asset = change.asset
        state = "on" if asset.is_active else "off"
        message = (
            f"Trading in {asset.asset_id} is {state}"
            if change.changed
            else f"Trading in {asset.asset_id} was already {state}"
        )
        return cls(message=message, changed=change.changed, data=AdminAssetOut.of(asset))


class RefreshOut(ApiModel):
    outcome: Literal["ok", "failed", "breaker_open", "backoff", "busy"]
    source: str
    stored: int
    changed: int
    skipped: int
    version: int
    duration_ms: int
    error: str | None
    retry_at: Timestamp | None

    @classmethod
    def of(cls, result: market.RefreshResult) -> RefreshOut:
        return cls.model_validate(result)


# ---------------------------------------------------------------- orders


class AdminOrderOut(OrderOut):
    username: str

    @classmethod
    def of(cls, order: trading.OrderView) -> AdminOrderOut:
        return cls.model_validate(order)


class AdminOrderPageOut(ApiModel):
    data: list[AdminOrderOut]
    total_count: int
    limit: int
    offset: int
    has_more: bool

    @classmethod
    def of(cls, page: admin.OrderPage) -> AdminOrderPageOut:
        return cls(
            data=[AdminOrderOut.of(o) for o in page.rows],
            total_count=page.total,
            limit=page.limit,
            offset=page.offset,
            has_more=page.offset + len(page.rows) < page.total,
        )


class AdminOrderEnvelope(ApiModel):
    data: AdminOrderOut


# ---------------------------------------------------------------- system


class UserFiguresOut(ApiModel):
    total: int
    active_now: int
    signed_in: int
    new_today: int
    disabled: int
    admins: int


class OrderFiguresOut(ApiModel):
    today: int
    fills_today: int
    volume_today: Money
    open_limit_orders: int


class PriceFeedOut(MarketStatusOut):
    next_refresh_at: Timestamp | None


class MirrorOut(ApiModel):
    """The DynamoDB mirror's health; the figures are present when it is enabled."""

    status: Literal["ok", "degraded", "down"]
    enabled: bool
    outbox_depth: int | None = None
    oldest_undrained_age_seconds: float | None = None
    failing_rows: int | None = None
    dynamodb_reachable: bool | None = None
    last_error: str | None = None


class DatabaseOut(ApiModel):
    backend: str
    size_bytes: int | None


class ErrorOut(ApiModel):
    at: Timestamp
    logger: str
    message: str
    error: str | None
    request_id: str | None


class DifferenceOut(ApiModel):
    username: str
    asset_id: str | None
    figure: str
    stored: DecimalText | None
    expected: DecimalText | None
    note: str
    text: str


class IntegrityOut(ApiModel):
    ok: bool
    checked_at: Timestamp
    accounts: int
    holdings: int
    ledger_entries: int
    fills: int
    pending_orders: int
    difference_count: int
    differences: list[DifferenceOut]  # the first 100

    @classmethod
    def of(cls, report: admin.IntegrityReport) -> IntegrityOut:
        return cls(
            ok=report.ok,
            checked_at=report.checked_at,
            accounts=report.accounts,
            holdings=report.holdings,
            ledger_entries=report.ledger_entries,
            fills=report.fills,
            pending_orders=report.pending_orders,
            difference_count=len(report.differences),
            differences=[
                DifferenceOut(
                    username=d.username,
                    asset_id=d.asset_id,
                    figure=d.figure,
                    stored=d.stored,
                    expected=d.expected,
                    note=d.note,
                    text=d.describe(),
                )
                for d in report.differences[:MAX_DIFFERENCES_SHOWN]
            ],
        )


class SystemOut(ApiModel):
    generated_at: Timestamp
    users: UserFiguresOut
    open_sessions: int
    orders: OrderFiguresOut
    price_feed: PriceFeedOut
    mirror: MirrorOut
    database: DatabaseOut
    recent_errors: list[ErrorOut]
    integrity: IntegrityOut | None

    @classmethod
    def of(cls, overview: admin.SystemOverview) -> SystemOut:
        return cls(
            generated_at=overview.generated_at,
            users=UserFiguresOut.model_validate(overview.users),
            open_sessions=overview.open_sessions,
            orders=OrderFiguresOut.model_validate(overview.orders),
            price_feed=PriceFeedOut.model_validate(overview.price_feed),
            mirror=MirrorOut.model_validate(overview.mirror),
            database=DatabaseOut.model_validate(overview.database),
            recent_errors=[ErrorOut.model_validate(e) for e in overview.recent_errors],
            integrity=IntegrityOut.of(overview.integrity) if overview.integrity is not None else None,
        )
