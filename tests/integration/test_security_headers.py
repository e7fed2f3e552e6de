"""Security headers on every response of the app (A7) and the audit client bound per request: the app's
ASGI wrapper (`http_security.wrap`, Reflex's api_transformer) around the REST API. The pages that
`make run` serves are checked in Chromium by tests/browser/test_csp.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from cnop_app import http_security
from cnop_app.api import create_api
from cnop_app.config import get_settings, reset_settings
from cnop_app.db import read_session
from cnop_app.models import AuditEvent
from tests.support.helpers import user_payload


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


@pytest.fixture
def app(any_db: str) -> Iterator[TestClient]:
    with TestClient(http_security.wrap(create_api()), raise_server_exceptions=False) as client:
        yield client


def test_every_response_carries_the_headers(app: TestClient) -> None:
    for response in (
        app.get("/health"),
        app.get("/api/v1/inventory/assets?limit=1"),
        app.get("/api/v1/no-such-route"),
        app.post("/api/v1/auth/login", json={"username": "nobody_1", "password": "Wrong-Password-9"}),
    ):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
        assert "camera=()" in headers["permissions-policy"] and "geolocation=()" in headers["permissions-policy"]
        assert headers["cross-origin-opener-policy"] == "same-origin"
        assert "strict-transport-security" not in headers  # plain http public URL
        policy = directives(headers["content-security-policy"])
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["img-src"] == ["'self'", "data:"]
        assert policy["object-src"] == ["'none'"]
        assert policy["default-src"] == ["'self'"]
        # Nothing third-party: every source is this origin (or the public URL and its loopback twins).
        loopback = ("localhost", "127.0.0.1", "[::1]")
        for name, values in policy.items():
            for value in values:
                assert value.startswith("'") or value == "data:" or any(h in value for h in loopback), (name, value)


def test_connect_src_allows_the_public_url_and_its_websocket(app: TestClient) -> None:
    policy = directives(app.get("/health").headers["content-security-policy"])
    public = get_settings().public_url
    assert public in policy["connect-src"]
    assert public.replace("http://", "ws://") in policy["connect-src"]


def test_hsts_when_the_public_url_is_https(any_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_PUBLIC_URL", "https://cnop.example.com")
    reset_settings()
    with TestClient(http_security.wrap(create_api())) as client:
        headers = client.get("/health").headers
    assert headers["strict-transport-security"] == "max-age=31536000"
    connect = directives(headers["content-security-policy"])["connect-src"]
    assert connect == ["'self'", "https://cnop.example.com", "wss://cnop.example.com"]


def test_only_the_api_docs_may_load_swagger_from_its_cdn(app: TestClient) -> None:
    docs = directives(app.get("/docs").headers["content-security-policy"])
    assert http_security.DOCS_CDN in docs["script-src"]
    assert http_security.DOCS_CDN not in app.get("/health").headers["content-security-policy"]


def test_the_audit_rows_of_a_request_name_its_client(app: TestClient) -> None:
    response = app.post(
        "/api/v1/auth/register",
        json=user_payload("alice_01"),
        headers={"User-Agent": "pytest-agent/1.0", "X-Request-ID": "req-audit-1", "X-Forwarded-For": "203.0.113.9"},
    )
    assert response.status_code == 201
    with read_session() as session:
        row = session.exec(select(AuditEvent).where(AuditEvent.event_type == "user_registered")).one()
    assert row.user_agent == "pytest-agent/1.0"
    assert row.request_id == "req-audit-1"
    # X-Forwarded-For from a peer that is not a trusted proxy is ignored (the one client-IP rule).
    assert row.ip != "203.0.113.9"


def test_hashed_frontend_files_are_cached_for_good_and_nothing_else(any_db: str, tmp_path: Path) -> None:
    """Built JavaScript and CSS (/assets/, content-hashed names) may stay in the browser's cache; pages,
    API answers and a file that is not there (yet: a rolling deploy) are not cached that way."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "market-CxT3r9aB.js").write_text("export const x = 1;\n")
    (tmp_path / "market.html").write_text("<html></html>\n")
    frontend = Starlette(routes=[Mount("/", app=StaticFiles(directory=tmp_path, html=True))])
    with TestClient(http_security.wrap(frontend)) as client:
        built = client.get("/assets/market-CxT3r9aB.js")
        assert built.status_code == 200
        assert built.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert built.headers["x-content-type-options"] == "nosniff"  # the security headers as well
        again = client.get("/assets/market-CxT3r9aB.js", headers={"if-none-match": built.headers["etag"]})
        assert again.status_code == 304 and again.headers["cache-control"].endswith("immutable")
        missing = client.get("/assets/market-NewHash1.js")
        assert missing.status_code == 404 and "cache-control" not in missing.headers
        page = client.get("/market.html")
        assert page.status_code == 200 and "cache-control" not in page.headers
    with TestClient(http_security.wrap(create_api())) as api:
        assert "cache-control" not in api.get("/api/v1/inventory/assets?limit=1").headers
