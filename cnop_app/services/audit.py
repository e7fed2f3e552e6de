"""Security and admin events, written in the caller's transaction."""

from __future__ import annotations

import json

from sqlmodel import Session

from cnop_app.models import AuditEvent


def record(
    session: Session,
    event_type: str,
    username: str | None = None,
    *,
    actor: str | None = None,
    ip: str | None = None,
    **detail: object,
) -> None:
    session.add(
        AuditEvent(
            event_type=event_type,
            username=username,
            actor=actor or username,
            ip=ip,
            detail=json.dumps(detail, default=str, sort_keys=True),
        )
    )
