"""Helpers for the admin and account-tools tests: the API with their routers, admins, audit rows."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlmodel import col, select

from cnop_app.api import API_PREFIX, create_api
from cnop_app.api import account as account_routes
from cnop_app.api import admin as admin_routes
from cnop_app.db import read_session
from cnop_app.domain.enums import Role
from cnop_app.domain.timeutil import utcnow
from cnop_app.models import AuditEvent, AuthSession, Outbox
from cnop_app.services import auth
from cnop_app.services.admin import AdminContext
from tests.support.helpers import STRONG_PASSWORD, user_payload


def api_with_admin_routes() -> FastAPI:
    """The real API; until `create_api` includes the admin and account routers, they are added here,
    ahead of the catch-all 404 route of unknown /api paths."""
    api = create_api()
    if any(getattr(r, "path", "").startswith(f"{API_PREFIX}/admin") for r in api.router.routes):
        return api
    v1 = APIRouter(prefix=API_PREFIX)
    v1.include_router(admin_routes.router)
    v1.include_router(account_routes.router)
    api.include_router(v1)
    catch_all = [r for r in api.router.routes if getattr(r, "path", "") == "/api/{path:path}"]
    api.router.routes[:] = [r for r in api.router.routes if r not in catch_all] + catch_all
    return api


def make_admin(username: str = "admin_01") -> str:
    auth.register(user_payload(username), role=Role.ADMIN)
    return username


def login_headers(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": STRONG_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def admin_ctx(username: str = "admin_01", ip: str | None = "192.0.2.1", request_id: str | None = "r-1") -> AdminContext:
    """An admin context without a login (the principal as `auth.authenticate` would return it)."""
    principal = auth.Principal(username=username, role=Role.ADMIN, jti="test", expires_at=utcnow() + timedelta(hours=1))
    return AdminContext(principal, ip=ip, request_id=request_id)


def audit_rows(event_type: str | None = None) -> list[dict[str, Any]]:
    """Audit rows (oldest first) as dicts with the detail decoded."""
    with read_session() as session:
        query = select(AuditEvent).order_by(col(AuditEvent.id))
        if event_type:
            query = query.where(AuditEvent.event_type == event_type)
        rows = session.exec(query).all()
    return [
        {"event_type": r.event_type, "username": r.username, "actor": r.actor, "ip": r.ip, **json.loads(r.detail)}
        for r in rows
    ]


def outbox_entities() -> list[tuple[str, str]]:
    with read_session() as session:
        return [(r.entity, r.entity_key) for r in session.exec(select(Outbox).order_by(col(Outbox.id))).all()]


def open_sessions(username: str) -> int:
    with read_session() as session:
        rows = session.exec(
            select(AuthSession).where(AuthSession.username == username, col(AuthSession.revoked_at).is_(None))
        ).all()
    return len(rows)
