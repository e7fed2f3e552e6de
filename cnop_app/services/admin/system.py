"""The system overview: users, sessions, orders, price feed, DynamoDB mirror, database, recent errors.

"Recent errors" are the last ERROR records logged by the `cnop` loggers in THIS worker process
(unhandled API errors, failed refresh jobs, failed fills...), kept in a small in-memory ring buffer:
nothing extra is stored, and with several workers each one shows its own. The feed's and the
mirror's last errors are also in their own sections (shared through the database).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from cnop_app.db import read_session
from cnop_app.domain.enums import OrderStatus, Role
from cnop_app.domain.timeutil import utcnow
from cnop_app.models import AssetTransaction, AuthSession, Order, User
from cnop_app.observability.logging import request_id_var
from cnop_app.services import activity, market, mirror
from cnop_app.services.admin.context import AdminContext
from cnop_app.services.admin.integrity import IntegrityReport, verify_ledger

ERROR_BUFFER = 50
MAX_ERROR_TEXT = 500


@dataclass(frozen=True)
class ErrorRecord:
    at: datetime
    logger: str
    message: str
    error: str | None  # the exception type, when the record has one
    request_id: str | None


class _RecentErrors(logging.Handler):
    """Keeps the last ERROR_BUFFER error records of this process."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: deque[ErrorRecord] = deque(maxlen=ERROR_BUFFER)
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        item = ErrorRecord(
            at=datetime.fromtimestamp(record.created, timezone.utc),
            logger=record.name,
            message=message[:MAX_ERROR_TEXT],
            error=error,
            request_id=request_id_var.get(),
        )
        with self.guard:
            self.records.append(item)

    def latest(self, limit: int) -> list[ErrorRecord]:
        with self.guard:
            return list(self.records)[-limit:][::-1]

    def clear(self) -> None:
        with self.guard:
            self.records.clear()


_recent = _RecentErrors()


def install_error_buffer() -> None:
    """Attach the ring buffer to the `cnop` logger tree (idempotent; done when this module loads)."""
    logger = logging.getLogger("cnop")
    if _recent not in logger.handlers:
        logger.addHandler(_recent)


install_error_buffer()


def recent_errors(limit: int = 20) -> list[ErrorRecord]:
    """The newest error records of this process, newest first."""
    return _recent.latest(limit)


def clear_recent_errors() -> None:
    _recent.clear()


@dataclass(frozen=True)
class UserFigures:
    total: int
    active_now: int  # distinct users seen by this worker within CNOP_IDLE_AFTER_SECONDS
    signed_in: int  # distinct users holding an open session (any worker)
    new_today: int  # registered since 00:00 UTC
    disabled: int
    admins: int


@dataclass(frozen=True)
class OrderFigures:
    today: int  # orders created since 00:00 UTC
    fills_today: int
    volume_today: Decimal  # gross value of today's fills, USD
    open_limit_orders: int


@dataclass(frozen=True)
class DatabaseFigures:
    backend: str
    size_bytes: int | None


@dataclass(frozen=True)
class SystemOverview:
    generated_at: datetime
    users: UserFigures
    open_sessions: int
    orders: OrderFigures
    price_feed: dict[str, Any]  # `market.market_status()` plus `next_refresh_at`
    mirror: dict[str, Any]  # the mirror's health: enabled, outbox depth, lag, failing rows, last error
    database: DatabaseFigures
    recent_errors: list[ErrorRecord]
    integrity: IntegrityReport | None


def _day_start(now: datetime) -> datetime:
    return datetime.combine(now.date(), time.min, tzinfo=timezone.utc)


def _count(session: Session, model: type, *conditions: Any) -> int:
    return int(session.exec(select(func.count()).select_from(model).where(*conditions)).one())


def database_size(session: Session) -> DatabaseFigures:
    """The database's size: pages x page size for SQLite (the main file, without the WAL),
    `pg_database_size` for PostgreSQL."""
    backend = session.get_bind().dialect.name
    if backend == "sqlite":
        pages = session.execute(text("PRAGMA page_count")).scalar_one()
        page_size = session.execute(text("PRAGMA page_size")).scalar_one()
        return DatabaseFigures(backend, int(pages) * int(page_size))
    if backend == "postgresql":
        size = session.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        return DatabaseFigures(backend, int(size))
    return DatabaseFigures(backend, None)


def _figures(now: datetime) -> tuple[UserFigures, int, OrderFigures, DatabaseFigures]:
    today = _day_start(now)
    open_session = (col(AuthSession.revoked_at).is_(None), col(AuthSession.expires_at) > now)
    with read_session() as session:
        users = UserFigures(
            total=_count(session, User),
            active_now=activity.active_user_count(),
            signed_in=int(
                session.exec(select(func.count(func.distinct(AuthSession.username))).where(*open_session)).one()
            ),
            new_today=_count(session, User, col(User.created_at) >= today),
            disabled=_count(session, User, col(User.is_active).is_(False)),
            admins=_count(session, User, User.role == Role.ADMIN, col(User.is_active).is_(True)),
        )
        sessions = _count(session, AuthSession, *open_session)
        grosses = session.exec(select(AssetTransaction.total_amount).where(col(AssetTransaction.created_at) >= today))
        volume = Decimal(0)
        fills = 0
        for gross in grosses:  # summed in Python: SQLite stores exact decimals as text
            volume += gross
            fills += 1
        orders = OrderFigures(
            today=_count(session, Order, col(Order.created_at) >= today),
            fills_today=fills,
            volume_today=volume,
            open_limit_orders=_count(session, Order, Order.status == OrderStatus.PENDING),
        )
        database = database_size(session)
    return users, sessions, orders, database


def system_overview(
    ctx: AdminContext,
    *,
    include_integrity: bool = True,
    due_at: Callable[[dict[str, Any], int], datetime] | None = None,
) -> SystemOverview:
    """The overview's figures now. `due_at` (the adapter passes `cnop_app.scheduler.due_at`) adds the
    price feed's next refresh time; `include_integrity` runs `verify_ledger` (a full read of the
    ledger and the fills: leave it off when polling a large deployment)."""
    now = utcnow()
    users, sessions, orders, database = _figures(now)
    feed = market.market_status()
    # A refresh already due (or never run) is due now.
    feed["next_refresh_at"] = max(now, due_at(market.load_status(), feed["interval_seconds"])) if due_at else None
    return SystemOverview(
        generated_at=now,
        users=users,
        open_sessions=sessions,
        orders=orders,
        price_feed=feed,
        mirror=mirror.health_check(),
        database=database,
        recent_errors=recent_errors(),
        integrity=verify_ledger() if include_integrity else None,
    )
