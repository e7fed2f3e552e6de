"""/api/v1/admin: the admin console's REST API. Every route needs an admin's bearer token (401 without a
token, 403 for a customer); the role is read from the database on each request.

Every change needs a `reason` (1-500 characters) and writes an audit event (actor, target, reason,
before/after, client IP, request id) in the same transaction as the change.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, StrictBool, StrictStr

from cnop_app import scheduler
from cnop_app.api.deps import admin_principal, client_ip
from cnop_app.api.schemas.admin import (
    AdjustmentOut,
    AdminAssetListOut,
    AdminOrderEnvelope,
    AdminOrderOut,
    AdminOrderPageOut,
    AssetChangeOut,
    AuditPageOut,
    RefreshOut,
    SystemOut,
    UserActionOut,
    UserDetailOut,
    UserPageOut,
)
from cnop_app.api.schemas.common import errors
from cnop_app.api.trading import DecimalInput
from cnop_app.domain.paging import MAX_PAGE
from cnop_app.services import admin, auth

# Authentication and the admin role first, before any input is looked at: a caller without a token
# gets 401 (and a customer 403), never a 422 about a filter.
router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(admin_principal)])

CSV_RESPONSE = {
    200: {
        "description": "The matching audit events as CSV, oldest first",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


def admin_context(request: Request, principal: auth.Principal = Depends(admin_principal)) -> admin.AdminContext:
    return admin.AdminContext(principal, ip=client_ip(request))


class ReasonBody(BaseModel):
    reason: StrictStr


class RoleBody(BaseModel):
    role: StrictStr
    reason: StrictStr


class AdjustmentBody(BaseModel):
    # A string keeps every digit; a JSON number is read by its decimal text.
    amount: DecimalInput
    reason: StrictStr


class AssetBody(BaseModel):
    is_active: StrictBool
    reason: StrictStr


class RefreshBody(BaseModel):
    reason: StrictStr = "Manual refresh"


# ---------------------------------------------------------------- users


@router.get("/users", response_model=UserPageOut, responses=errors(401, 403, 422))
def list_users(
    query: str | None = Query(default=None, max_length=100, description="part of a username, email or name"),
    sort: str | None = Query(
        default=None, max_length=16, description="username, email, name, created_at, role or is_active; -key reverses"
    ),
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
    offset: int = Query(default=0, ge=0),
    ctx: admin.AdminContext = Depends(admin_context),
) -> UserPageOut:
    return UserPageOut.of(admin.search_users(ctx, query, sort=sort, limit=limit, offset=offset))


@router.get("/users/{username}", response_model=UserDetailOut, responses=errors(401, 403, 404, 422))
def get_user(
    username: str,
    ledger_limit: int = Query(default=20, ge=1, le=MAX_PAGE),
    ledger_offset: int = Query(default=0, ge=0),
    audit_limit: int = Query(default=20, ge=1, le=MAX_PAGE),
    audit_offset: int = Query(default=0, ge=0),
    ctx: admin.AdminContext = Depends(admin_context),
) -> UserDetailOut:
    """Profile, cash, holdings valued now, open orders, a page of the ledger, open sessions, a page of
    the user's audit events, and until when a failed-login delay blocks them."""
    detail = admin.user_detail(
        ctx,
        username,
        ledger_limit=ledger_limit,
        ledger_offset=ledger_offset,
        audit_limit=audit_limit,
        audit_offset=audit_offset,
    )
    return UserDetailOut.of(detail, ledger_limit, ledger_offset, audit_limit, audit_offset)


@router.post("/users/{username}/disable", response_model=UserActionOut, responses=errors(401, 403, 404, 409, 413, 422))
def disable_user(username: str, body: ReasonBody, ctx: admin.AdminContext = Depends(admin_context)) -> UserActionOut:
    """Disable the user and sign out every session of theirs at once. 409 when already disabled; the
    last active admin cannot be disabled (422)."""
    return UserActionOut.of(admin.disable_user(ctx, username, body.reason))


@router.post("/users/{username}/enable", response_model=UserActionOut, responses=errors(401, 403, 404, 409, 413, 422))
def enable_user(username: str, body: ReasonBody, ctx: admin.AdminContext = Depends(admin_context)) -> UserActionOut:
    """Let a disabled user log in again. 409 when already enabled."""
    return UserActionOut.of(admin.enable_user(ctx, username, body.reason))


@router.post("/users/{username}/sign-out", response_model=UserActionOut, responses=errors(401, 403, 404, 413, 422))
def sign_out(username: str, body: ReasonBody, ctx: admin.AdminContext = Depends(admin_context)) -> UserActionOut:
    """Revoke every open session of the user (they can log in again)."""
    return UserActionOut.of(admin.sign_out_everywhere(ctx, username, body.reason))


@router.put("/users/{username}/role", response_model=UserActionOut, responses=errors(401, 403, 404, 413, 422))
def change_role(username: str, body: RoleBody, ctx: admin.AdminContext = Depends(admin_context)) -> UserActionOut:
    """Make the user `admin` or `customer` (effective on their next request). The last active admin
    cannot be demoted (422). The current role again changes nothing (`changed` false, no audit event)."""
    return UserActionOut.of(admin.change_role(ctx, username, body.role, body.reason))


@router.post(
    "/users/{username}/adjustments",
    status_code=201,
    response_model=AdjustmentOut,
    responses=errors(401, 403, 404, 413, 422),
)
def adjust_cash(username: str, body: AdjustmentBody, ctx: admin.AdminContext = Depends(admin_context)) -> AdjustmentOut:
    """Credit or debit cash with one `system_adjustment` ledger entry (non-zero, whole cents, at most
    1,000,000 either way). A debit never takes cash below what open orders hold (422)."""
    return AdjustmentOut.of(admin.adjust_cash(ctx, username, body.amount, body.reason))


# ---------------------------------------------------------------- assets and prices


@router.get("/assets", response_model=AdminAssetListOut, responses=errors(401, 403, 422))
def list_assets(
    is_active: bool | None = Query(default=None, description="only assets with trading on (true) or off (false)"),
    ctx: admin.AdminContext = Depends(admin_context),
) -> AdminAssetListOut:
    """The whole catalogue by market-cap rank, with trading on/off, price staleness and open orders."""
    return AdminAssetListOut.of(admin.list_assets(ctx, active=is_active))


@router.put("/assets/{asset_id}", response_model=AssetChangeOut, responses=errors(401, 403, 404, 413, 422))
def set_trading(asset_id: str, body: AssetBody, ctx: admin.AdminContext = Depends(admin_context)) -> AssetChangeOut:
    """Turn trading in an asset on or off. While it is off, new orders are refused (422, "Asset X is
    not available for trading"); its open limit orders stay pending and do not fill, still expire at
    their expiry and can be cancelled, and fill at the first price refresh that crosses their limit
    once trading is back on. The current state again changes nothing (`changed` false, no audit event)."""
    return AssetChangeOut.of(admin.set_trading(ctx, asset_id, body.is_active, body.reason))


@router.post("/market/refresh", response_model=RefreshOut, responses=errors(401, 403, 413, 422))
def refresh_prices(body: RefreshBody | None = None, ctx: admin.AdminContext = Depends(admin_context)) -> RefreshOut:
    """Refresh prices now from the configured source. Honours the refresher lease (`busy` while
    another refresh runs) and the circuit breaker / back-off (`breaker_open`, `backoff`)."""
    reason = body.reason if body is not None else RefreshBody().reason
    return RefreshOut.of(admin.refresh_prices_now(ctx, reason, scheduler.run_refresh_once))


# ---------------------------------------------------------------- orders


@router.get("/orders", response_model=AdminOrderPageOut, responses=errors(401, 403, 422))
def list_orders(
    username: str | None = Query(default=None, max_length=30),
    asset_id: str | None = Query(default=None, max_length=10),
    order_type: str | None = Query(default=None, max_length=16),
    status: str | None = Query(default=None, max_length=16),
    since: str | None = Query(default=None, max_length=40, description="created at or after (ISO 8601)"),
    until: str | None = Query(default=None, max_length=40, description="created before; a date alone includes it"),
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
    offset: int = Query(default=0, ge=0),
    ctx: admin.AdminContext = Depends(admin_context),
) -> AdminOrderPageOut:
    """Every user's orders, newest first."""
    page = admin.list_orders(
        ctx,
        username=username,
        asset_id=asset_id,
        order_type=order_type,
        status=status,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return AdminOrderPageOut.of(page)


@router.post(
    "/orders/{order_id}/cancel", response_model=AdminOrderEnvelope, responses=errors(401, 403, 404, 409, 413, 422)
)
def cancel_order(
    order_id: str, body: ReasonBody, ctx: admin.AdminContext = Depends(admin_context)
) -> AdminOrderEnvelope:
    """Cancel a user's pending order on their behalf and release its hold. 409 when not pending."""
    return AdminOrderEnvelope(data=AdminOrderOut.of(admin.cancel_order(ctx, order_id, body.reason)))


# ---------------------------------------------------------------- audit log and system


def _audit_filters(
    username: str | None = Query(default=None, max_length=30, description="the affected user"),
    actor: str | None = Query(default=None, max_length=30, description="who acted"),
    event_type: str | None = Query(default=None, max_length=40),
    since: str | None = Query(default=None, max_length=40, description="at or after (ISO 8601)"),
    until: str | None = Query(default=None, max_length=40, description="before; a date alone includes it"),
) -> admin.AuditFilters:
    return admin.audit_filters(username=username, actor=actor, event_type=event_type, since=since, until=until)


@router.get("/audit", response_model=AuditPageOut, responses=errors(401, 403, 422))
def audit_log(
    filters: admin.AuditFilters = Depends(_audit_filters),
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
    offset: int = Query(default=0, ge=0),
    ctx: admin.AdminContext = Depends(admin_context),
) -> AuditPageOut:
    """Audit events, newest first."""
    page = admin.search_audit(ctx, filters, limit=limit, offset=offset)
    return AuditPageOut.of(page.rows, page.total, limit, offset)


@router.get("/audit.csv", response_class=StreamingResponse, responses={**CSV_RESPONSE, **errors(401, 403, 422)})
def audit_csv(
    filters: admin.AuditFilters = Depends(_audit_filters), ctx: admin.AdminContext = Depends(admin_context)
) -> StreamingResponse:
    """The matching audit events as CSV, oldest first (streamed)."""
    return StreamingResponse(
        admin.audit_csv(ctx, filters),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="cnop-audit.csv"'},
    )


@router.get("/system", response_model=SystemOut, responses=errors(401, 403, 422))
def system(
    integrity: bool = Query(default=True, description="also run the ledger integrity check"),
    ctx: admin.AdminContext = Depends(admin_context),
) -> SystemOut:
    """The overview's figures: users, sessions, orders and volume today, the price feed, the DynamoDB
    mirror, the database size, this worker's recent errors and (unless `integrity=false`) the ledger
    integrity check."""
    return SystemOut.of(admin.system_overview(ctx, include_integrity=integrity, due_at=scheduler.due_at))
