"""The audit log: filtered, paged, and exported as CSV (streamed in batches, oldest first)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from cnop_app.db import read_session
from cnop_app.domain import admin as rules
from cnop_app.domain.errors import ValidationFailed
from cnop_app.domain.paging import check_page
from cnop_app.models import AuditEvent
from cnop_app.services import validation
from cnop_app.services.admin.context import AdminContext
from cnop_app.services.admin.users import AuditView, to_audit_view

CSV_COLUMNS = (
    "id",
    "at",
    "event_type",
    "username",
    "actor",
    "ip",
    "user_agent",
    "request_id",
    "target",
    "reason",
    "detail",
)
CSV_BATCH = 1000
MAX_EVENT_TYPE = 40


@dataclass(frozen=True)
class AuditFilters:
    username: str | None = None
    actor: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[Any]:
        out: list[Any] = []
        if self.username:
            out.append(AuditEvent.username == self.username)
        if self.actor:
            out.append(AuditEvent.actor == self.actor)
        if self.event_type:
            out.append(AuditEvent.event_type == self.event_type)
        if self.since is not None:
            out.append(col(AuditEvent.at) >= self.since)
        if self.until is not None:
            out.append(col(AuditEvent.at) < self.until)
        return out


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditView]
    total: int
    limit: int
    offset: int


def _name(value: object, field: str) -> str | None:
    if value is None or value == "":
        return None
    # Audit rows also name usernames that never existed (failed logins): any well-formed name matches.
    return validation.username(value, field)


def audit_filters(
    *,
    username: object = None,
    actor: object = None,
    event_type: object = None,
    since: object = None,
    until: object = None,
) -> AuditFilters:
    """Validated filters: user (the affected user), actor (who acted), event type, period
    (`since` inclusive, `until` exclusive; a date alone for `until` includes that day)."""
    kind = None
    if event_type is not None and event_type != "":
        if not isinstance(event_type, str) or len(event_type.strip()) > MAX_EVENT_TYPE:
            raise ValidationFailed(f"event_type must be at most {MAX_EVENT_TYPE} characters", "event_type")
        kind = event_type.strip() or None
    start, end = rules.parse_period(since, until)
    return AuditFilters(_name(username, "username"), _name(actor, "actor"), kind, start, end)


def search_audit(ctx: AdminContext, filters: AuditFilters, *, limit: int = 50, offset: int = 0) -> AuditPage:
    """Audit events matching `filters`, newest first, with the total count."""
    check_page(limit, offset)
    conditions = filters.conditions()
    with read_session() as session:
        total = session.exec(select(func.count()).select_from(AuditEvent).where(*conditions)).one()
        rows = session.exec(
            select(AuditEvent).where(*conditions).order_by(col(AuditEvent.id).desc()).offset(offset).limit(limit)
        ).all()
    return AuditPage([to_audit_view(r) for r in rows], int(total), limit, offset)


def event_types(ctx: AdminContext) -> list[str]:
    """Every event type present in the log (the filter's choices), alphabetically."""
    with read_session() as session:
        return sorted(session.exec(select(AuditEvent.event_type).distinct()).all())


def _cell(value: object) -> object:
    # A spreadsheet would run a cell starting with = + - @ as a formula (reasons are free text).
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return value


def _csv_line(values: list[object]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([_cell(v) for v in values])
    return out.getvalue()


def audit_csv(ctx: AdminContext, filters: AuditFilters) -> Iterator[str]:
    """The matching events as CSV lines, oldest first, read in batches of 1000 (any size of log
    streams in bounded memory). Target and reason get their own columns; `detail` keeps the whole JSON."""
    yield _csv_line(list(CSV_COLUMNS))
    conditions = filters.conditions()
    after = 0
    while True:
        with read_session() as session:
            rows = session.exec(
                select(AuditEvent)
                .where(*conditions, col(AuditEvent.id) > after)
                .order_by(col(AuditEvent.id))
                .limit(CSV_BATCH)
            ).all()
        if not rows:
            return
        for row in rows:
            view = to_audit_view(row)
            detail = view.detail
            yield _csv_line(
                [
                    view.id,
                    view.at.isoformat(),
                    view.event_type,
                    view.username or "",
                    view.actor or "",
                    view.ip or "",
                    view.user_agent or "",
                    view.request_id or "",
                    detail.get("target", ""),
                    detail.get("reason", ""),
                    json.dumps(detail, sort_keys=True),
                ]
            )
        after = rows[-1].id or after
