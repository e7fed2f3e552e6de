"""Security and admin events, written in the caller's transaction, and counted once it commits.

Every row carries the request id (the logging context's, unless given), the client IP and the user
agent. The web layer binds the client of the current request or websocket (`bind_client`), so a
service that does not pass `ip` / `user_agent` still records who called. Once the transaction
commits, each row is counted in `cnop_audit_events_total{event}`; throttle starts and suspicious
events also in their own metrics (bounded labels: event types and fixed kinds, never names or IPs).
"""

from __future__ import annotations

import contextvars
import json
from dataclasses import dataclass

from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session

from cnop_app.models import AuditEvent
from cnop_app.observability.logging import request_id_var
from cnop_app.observability.metrics import REGISTRY

USER_AGENT_MAX = 255
REQUEST_ID_MAX = 128
IP_MAX = 64

# Event types other modules record and this module interprets.
THROTTLE_STARTED = "login_throttle_started"
REVOKED_TOKEN_PRESENTED = "revoked_token_presented"

SUSPICIOUS_KINDS = ("many_usernames_one_ip", "revoked_token_reuse", "password_guessing", "admin_action")
THROTTLE_SCOPES = ("user_ip", "ip")

AUDIT_EVENTS = Counter(
    "cnop_audit_events_total",
    "Security and admin events written to audit_events, by type",
    ["event"],
    registry=REGISTRY,
)
THROTTLE_EVENTS = Counter(
    "cnop_login_throttle_events_total",
    "Login throttling delays that started (a wrong login or current password past the threshold), by scope: "
    "user_ip (one username from one client IP) or ip (any usernames from one client IP)",
    ["scope"],
    registry=REGISTRY,
)
SUSPICIOUS = Counter(
    "cnop_suspicious_events_total",
    "Suspicious events by kind: many_usernames_one_ip (an IP's throttle started), revoked_token_reuse, "
    "password_guessing (current-password throttle started), admin_action",
    ["kind"],
    registry=REGISTRY,
)
for _kind in SUSPICIOUS_KINDS:
    SUSPICIOUS.labels(_kind)
for _scope in THROTTLE_SCOPES:
    THROTTLE_EVENTS.labels(_scope)


@dataclass(frozen=True)
class Client:
    """Who is calling: the client IP (by the app's one rule) and the user agent."""

    ip: str | None = None
    user_agent: str | None = None


_client_var: contextvars.ContextVar[Client | None] = contextvars.ContextVar("cnop_audit_client", default=None)


def bind_client(ip: str | None, user_agent: str | None) -> contextvars.Token[Client | None]:
    """Make `ip` / `user_agent` the defaults of every record in this context (a request or a websocket)."""
    return _client_var.set(Client(ip=ip, user_agent=user_agent))


def unbind_client(token: contextvars.Token[Client | None]) -> None:
    _client_var.reset(token)


def current_client() -> Client:
    return _client_var.get() or Client()


def _bounded(value: object, limit: int) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text[:limit] or None


def record(
    session: Session,
    event_type: str,
    username: str | None = None,
    *,
    actor: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    request_id: str | None = None,
    **detail: object,
) -> None:
    client = current_client()
    row_request_id = request_id or request_id_var.get()
    if request_id is not None:
        # Callers that pass it explicitly also read it back from the detail (the admin audit log).
        detail["request_id"] = request_id
    session.add(
        AuditEvent(
            event_type=event_type,
            username=username,
            actor=actor or username,
            ip=_bounded(ip or client.ip, IP_MAX),
            user_agent=_bounded(user_agent or client.user_agent, USER_AGENT_MAX),
            request_id=_bounded(row_request_id, REQUEST_ID_MAX),
            detail=json.dumps(detail, default=str, sort_keys=True),
        )
    )
    _count_on_commit(session, _counts(event_type, username, actor, detail))


def _counts(event_type: str, username: str | None, actor: str | None, detail: dict[str, object]) -> list[Counter]:
    """The metric children one audit row increments."""
    children = [AUDIT_EVENTS.labels(event_type)]
    scope = detail.get("scope")
    if event_type == THROTTLE_STARTED and scope in THROTTLE_SCOPES:
        children.append(THROTTLE_EVENTS.labels(scope))
        if scope == "ip":
            children.append(SUSPICIOUS.labels("many_usernames_one_ip"))
        if detail.get("via") == "password_change":
            children.append(SUSPICIOUS.labels("password_guessing"))
    elif event_type == REVOKED_TOKEN_PRESENTED:
        children.append(SUSPICIOUS.labels("revoked_token_reuse"))
    if actor is not None and actor != username:
        # Someone acted on another account (or on no account): an admin action.
        children.append(SUSPICIOUS.labels("admin_action"))
    return children


# Counted after the commit, never for work that rolled back (UI and API writes alike).
_PENDING = "cnop_audit_pending_counts"


def _count_on_commit(session: Session, children: list[Counter]) -> None:
    session.info.setdefault(_PENDING, []).extend(children)


@event.listens_for(OrmSession, "after_commit")
def _after_commit(session: OrmSession) -> None:
    pending: list[Counter] | None = session.info.pop(_PENDING, None)
    for child in pending or ():
        child.inc()


@event.listens_for(OrmSession, "after_transaction_end")
def _after_transaction_end(session: OrmSession, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended without a commit: forget its counts
        session.info.pop(_PENDING, None)
