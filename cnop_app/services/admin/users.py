"""Admin user tools: search, detail, disable / enable, sign out everywhere, role, login throttling, cash.

Every change runs in one unit of work with its audit row (`context.record`) and its outbox rows.
Role changes and disabling lock the active admins first (in id order, so two admins acting at once
queue instead of deadlocking) and refuse to leave the deployment without an active admin.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from cnop_app.db import UnitOfWork, read_session, unit_of_work
from cnop_app.domain import admin as rules
from cnop_app.domain.cash import available, require_funds
from cnop_app.domain.enums import LedgerType, Role
from cnop_app.domain.errors import Conflict, NotFound
from cnop_app.domain.money import money_str
from cnop_app.domain.paging import check_page
from cnop_app.domain.throttle import username_hash
from cnop_app.domain.timeutil import utcnow
from cnop_app.models import Account, AuditEvent, AuthSession, LedgerEntry, LoginThrottle, User
from cnop_app.services import accounts, auth, outbox, portfolio, trading, validation
from cnop_app.services.admin.context import AdminContext, record
from cnop_app.services.auth import throttle

DEFAULT_DETAIL_PAGE = 20


@dataclass(frozen=True)
class AdminUser:
    """A user as the console lists it: profile, role, status, cash."""

    username: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    date_of_birth: date | None
    role: str
    is_active: bool
    created_at: datetime
    updated_at: datetime
    cash: Decimal
    held_cash: Decimal
    available_cash: Decimal


@dataclass(frozen=True)
class UserPage:
    rows: list[AdminUser]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class AuditView:
    id: int
    at: datetime
    event_type: str
    username: str | None
    actor: str | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class UserDetail:
    user: AdminUser
    portfolio: portfolio.PortfolioView  # holdings with value, and the totals
    open_orders: list[trading.OrderView]
    ledger: list[accounts.LedgerView]  # newest first, one page
    ledger_total: int
    sessions: list[auth.SessionView]  # open (unrevoked, unexpired)
    audit: list[AuditView]  # this user's audit events, newest first, one page
    audit_total: int
    login_blocked_until: datetime | None  # a (username, IP) throttle still blocking


@dataclass(frozen=True)
class UserActionResult:
    message: str
    user: AdminUser
    revoked_sessions: int = 0
    cleared_counters: int = 0
    changed: bool = True


@dataclass(frozen=True)
class AdjustmentResult:
    entry: accounts.LedgerView
    user: AdminUser


def to_admin_user(user: User, account: Account | None) -> AdminUser:
    cash = account.cash if account else Decimal(0)
    held = account.held if account else Decimal(0)
    return AdminUser(
        username=user.username,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        phone=user.phone,
        date_of_birth=user.date_of_birth,
        role=user.role,
        is_active=user.is_active,
        created_at=user.created_at,
        updated_at=user.updated_at,
        cash=cash,
        held_cash=held,
        available_cash=available(cash, held),
    )


def to_audit_view(row: AuditEvent) -> AuditView:
    try:
        detail = json.loads(row.detail or "{}")
    except ValueError:
        detail = {"raw": row.detail}
    return AuditView(
        id=row.id or 0,
        at=row.at,
        event_type=row.event_type,
        username=row.username,
        actor=row.actor,
        ip=row.ip,
        user_agent=row.user_agent,
        request_id=row.request_id,
        detail=detail if isinstance(detail, dict) else {"value": detail},
    )


# ---------------------------------------------------------------- reads


def _sort_columns(key: str, descending: bool) -> list[Any]:
    columns: dict[str, list[Any]] = {
        "username": [col(User.username)],
        "email": [col(User.email)],
        "name": [func.lower(User.last_name), func.lower(User.first_name)],
        "created_at": [col(User.created_at)],
        "role": [col(User.role)],
        "is_active": [col(User.is_active)],
    }
    chosen = [c.desc() if descending else c.asc() for c in columns[key]]
    return [*chosen, col(User.username).asc()]


def search_users(
    ctx: AdminContext, query: object = None, *, sort: object = None, limit: int = 50, offset: int = 0
) -> UserPage:
    """Users whose username, email or name contains `query` (case-insensitive), sorted by `sort`
    (`username`, `email`, `name`, `created_at`, `role`, `is_active`; prefix `-` to reverse), paged."""
    check_page(limit, offset)
    text = rules.parse_query(query)
    key, descending = rules.parse_sort(sort)
    condition = None
    if text:
        pattern = rules.like_pattern(text)
        condition = or_(
            func.lower(User.username).like(pattern, escape="\\"),
            func.lower(User.email).like(pattern, escape="\\"),
            func.lower(User.first_name + " " + User.last_name).like(pattern, escape="\\"),
        )
    listing = select(User, Account).join(Account, col(Account.username) == col(User.username), isouter=True)
    counting = select(func.count()).select_from(User)
    if condition is not None:
        listing = listing.where(condition)
        counting = counting.where(condition)
    with read_session() as session:
        total = int(session.exec(counting).one())
        rows = session.exec(listing.order_by(*_sort_columns(key, descending)).offset(offset).limit(limit)).all()
    return UserPage([to_admin_user(u, a) for u, a in rows], total, limit, offset)


def _user_row(session: Session, username: str) -> tuple[User, Account | None]:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"User {username} not found")
    return user, session.get(Account, username)


def get_user(ctx: AdminContext, username: object) -> AdminUser:
    name = validation.username(username)
    with read_session() as session:
        return to_admin_user(*_user_row(session, name))


def user_audit(ctx: AdminContext, username: str, limit: int, offset: int) -> tuple[list[AuditView], int]:
    check_page(limit, offset)
    with read_session() as session:
        total = session.exec(select(func.count()).select_from(AuditEvent).where(AuditEvent.username == username)).one()
        rows = session.exec(
            select(AuditEvent)
            .where(AuditEvent.username == username)
            .order_by(col(AuditEvent.id).desc())
            .offset(offset)
            .limit(limit)
        ).all()
    return [to_audit_view(r) for r in rows], int(total)


def user_detail(
    ctx: AdminContext,
    username: object,
    *,
    ledger_limit: int = DEFAULT_DETAIL_PAGE,
    ledger_offset: int = 0,
    audit_limit: int = DEFAULT_DETAIL_PAGE,
    audit_offset: int = 0,
) -> UserDetail:
    """Everything the user page shows: profile, cash, holdings valued now, open orders, a page of the
    ledger, open sessions, a page of the user's audit events and whether a login throttle blocks."""
    user = get_user(ctx, username)
    ledger, ledger_total = accounts.list_transactions(user.username, ledger_limit, ledger_offset)
    events, audit_total = user_audit(ctx, user.username, audit_limit, audit_offset)
    now = utcnow()
    with read_session() as session:
        blocked = session.exec(
            select(func.max(LoginThrottle.blocked_until)).where(
                LoginThrottle.username_hash == username_hash(user.username),
                col(LoginThrottle.blocked_until) > now,
            )
        ).one()
    return UserDetail(
        user=user,
        portfolio=portfolio.get_portfolio(user.username),
        open_orders=trading.list_open_orders(user.username),
        ledger=ledger,
        ledger_total=ledger_total,
        sessions=auth.active_sessions(user.username),
        audit=events,
        audit_total=audit_total,
        login_blocked_until=blocked,
    )


# ---------------------------------------------------------------- changes


def _locked_user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username).with_for_update()).first()
    if user is None:
        raise NotFound(f"User {username} not found")
    return user


def _active_admins(session: Session) -> list[str]:
    """The active admins, locked in id order: concurrent demotions queue and then see each other."""
    return list(
        session.exec(
            select(User.username)
            .where(User.role == Role.ADMIN, col(User.is_active).is_(True))
            .order_by(col(User.id))
            .with_for_update()
        ).all()
    )


def _revoke_all(session: Session, username: str, now: datetime) -> int:
    rows = session.exec(
        select(AuthSession).where(AuthSession.username == username, col(AuthSession.revoked_at).is_(None))
    ).all()
    for row in rows:
        row.revoked_at = now
        session.add(row)
    return len(rows)


def _save_user(session: Session, user: User, now: datetime) -> AdminUser:
    user.updated_at = now
    session.add(user)
    session.flush()
    outbox.emit(session, "user", user.username, user)
    return to_admin_user(user, session.get(Account, user.username))


def _set_active(
    ctx: AdminContext, username: object, active: bool, reason: object, uow: UnitOfWork | None
) -> UserActionResult:
    name = validation.username(username)
    why = rules.parse_reason(reason)
    now = utcnow()
    with unit_of_work(uow) as work:
        session = work.session
        admins = _active_admins(session)
        user = _locked_user(session, name)
        if user.is_active == active:
            raise Conflict(f"User {name} is already {'enabled' if active else 'disabled'}")
        if not active:
            rules.require_admin_remains(len(admins), name in admins, stays_active_admin=False)
        user.is_active = active
        revoked = 0 if active else _revoke_all(session, name, now)
        result = _save_user(session, user, now)
        record(
            session,
            ctx,
            "admin_user_enabled" if active else "admin_user_disabled",
            user=name,
            target=name,
            reason=why,
            before={"is_active": not active},
            after={"is_active": active},
            revoked_sessions=revoked,
        )
    verb = "enabled" if active else f"disabled; {revoked} session(s) signed out"
    return UserActionResult(f"User {name} {verb}", result, revoked_sessions=revoked)


def disable_user(
    ctx: AdminContext, username: object, reason: object, *, uow: UnitOfWork | None = None
) -> UserActionResult:
    """Disable a user and revoke every open session in the same transaction (the next request or UI
    event of any of them is refused). Already disabled: Conflict. The last active admin: refused."""
    return _set_active(ctx, username, False, reason, uow)


def enable_user(
    ctx: AdminContext, username: object, reason: object, *, uow: UnitOfWork | None = None
) -> UserActionResult:
    """Let a disabled user log in again (their old sessions stay revoked). Already enabled: Conflict."""
    return _set_active(ctx, username, True, reason, uow)


def sign_out_everywhere(
    ctx: AdminContext, username: object, reason: object, *, uow: UnitOfWork | None = None
) -> UserActionResult:
    """Revoke every open session of the user (they can log in again)."""
    name = validation.username(username)
    why = rules.parse_reason(reason)
    now = utcnow()
    with unit_of_work(uow) as work:
        session = work.session
        user = _locked_user(session, name)
        revoked = _revoke_all(session, name, now)
        record(
            session,
            ctx,
            "admin_signed_out",
            user=name,
            target=name,
            reason=why,
            before={"open_sessions": revoked},
            after={"open_sessions": 0},
            revoked_sessions=revoked,
        )
        result = to_admin_user(user, session.get(Account, name))
    return UserActionResult(f"{revoked} session(s) of {name} signed out", result, revoked_sessions=revoked)


def change_role(
    ctx: AdminContext, username: object, role: object, reason: object, *, uow: UnitOfWork | None = None
) -> UserActionResult:
    """Make a user an admin or a customer; takes effect on their next request (the role is read from
    the database on every request). The last active admin cannot be demoted. The same role: nothing
    changes and nothing is recorded (`changed` False)."""
    name = validation.username(username)
    new_role = rules.parse_role(role)
    why = rules.parse_reason(reason)
    now = utcnow()
    with unit_of_work(uow) as work:
        session = work.session
        admins = _active_admins(session)
        user = _locked_user(session, name)
        old_role = user.role
        if old_role == new_role:
            return UserActionResult(
                f"{name} is already {new_role}", to_admin_user(user, session.get(Account, name)), changed=False
            )
        rules.require_admin_remains(len(admins), name in admins, stays_active_admin=new_role == Role.ADMIN)
        user.role = new_role
        result = _save_user(session, user, now)
        record(
            session,
            ctx,
            "admin_role_changed",
            user=name,
            target=name,
            reason=why,
            before={"role": old_role},
            after={"role": str(new_role)},
        )
    return UserActionResult(f"{name} is now {new_role}", result)


def clear_login_throttling(
    ctx: AdminContext, username: object, reason: object, *, uow: UnitOfWork | None = None
) -> UserActionResult:
    """Delete the user's failed-login counters for every client IP, so a delay no longer blocks them.
    Per-IP counters (many names failing from one address) are not the user's and stay."""
    name = validation.username(username)
    why = rules.parse_reason(reason)
    with unit_of_work(uow) as work:
        session = work.session
        user = _locked_user(session, name)
        cleared = throttle.clear_username(session, name)
        record(
            session,
            ctx,
            "admin_throttle_cleared",
            user=name,
            target=name,
            reason=why,
            before={"throttle_counters": cleared},
            after={"throttle_counters": 0},
        )
        result = to_admin_user(user, session.get(Account, name))
    return UserActionResult(f"{cleared} login counter(s) of {name} cleared", result, cleared_counters=cleared)


def adjust_cash(
    ctx: AdminContext, username: object, amount: object, reason: object, *, uow: UnitOfWork | None = None
) -> AdjustmentResult:
    """Credit (positive) or debit (negative) a user's cash with one `system_adjustment` ledger entry.

    A debit may not take cash below what the user's open buy orders hold (insufficient funds, 422).
    The entry's description carries the reason: the user sees it in their transaction history."""
    name = validation.username(username)
    change = rules.parse_adjustment(amount)
    why = rules.parse_reason(reason)
    with unit_of_work(uow) as work:
        session = work.session
        user = _locked_user(session, name)
        account = accounts.lock_account(session, name)
        before = {"cash": money_str(account.cash), "held_cash": money_str(account.held)}
        if change < 0:
            require_funds(account.cash, account.held, -change, "amount")
        entry = accounts.post_entry(
            session, account, LedgerType.SYSTEM_ADJUSTMENT, change, description=f"Adjustment: {why}"
        )
        record(
            session,
            ctx,
            "admin_cash_adjusted",
            user=name,
            target=name,
            reason=why,
            before=before,
            after={"cash": money_str(account.cash), "held_cash": money_str(account.held)},
            amount=money_str(change),
            transaction_id=entry.transaction_id,
        )
        view = _ledger_view(entry)
        result = AdjustmentResult(view, to_admin_user(user, account))
    return result


def _ledger_view(entry: LedgerEntry) -> accounts.LedgerView:
    return accounts.LedgerView(
        transaction_id=entry.transaction_id,
        transaction_type=entry.entry_type,
        amount=entry.amount,
        balance_after=entry.balance_after,
        reference=entry.reference,
        description=entry.description,
        status="completed",
        created_at=entry.created_at,
    )
