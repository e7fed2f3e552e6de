"""Who acts in the admin console, and the audit record every admin action writes.

An `AdminContext` can only be built for an admin principal: every admin service function takes one,
so the role is checked again below the API and the UI, whichever adapter calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from cnop_app.domain.errors import Forbidden
from cnop_app.observability.logging import request_id_var
from cnop_app.services import audit
from cnop_app.services.auth import Principal


@dataclass(frozen=True)
class AdminContext:
    """The acting admin, the client address and the request id (taken from the current request's
    logging context when not given; the Reflex UI has none unless it passes one)."""

    principal: Principal
    ip: str | None = None
    request_id: str | None = field(default_factory=request_id_var.get)

    def __post_init__(self) -> None:
        if not self.principal.is_admin:
            raise Forbidden("Admin role required")

    @property
    def actor(self) -> str:
        return self.principal.username


def record(
    session: Session,
    ctx: AdminContext,
    event_type: str,
    *,
    user: str | None,
    target: str,
    reason: str,
    before: dict[str, Any],
    after: dict[str, Any],
    **extra: object,
) -> None:
    """One audit row in the caller's transaction: actor, target, reason, before/after, IP, request id.

    `user` is the affected user (the row's `username`, so the action shows in that user's audit
    trail); `target` names what changed (a username, an asset id, an order id)."""
    audit.record(
        session,
        event_type,
        user,
        actor=ctx.actor,
        ip=ctx.ip,
        target=target,
        reason=reason,
        before=before,
        after=after,
        request_id=ctx.request_id,
        **extra,
    )
