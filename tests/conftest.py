"""Shared fixtures: every test gets its own data dir and a freshly migrated SQLite database."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, sync_playwright

from cnop_app.api import create_api
from cnop_app.config import reset_settings
from cnop_app.db import dispose_engines
from cnop_app.manage import migrate
from tests.app_server import CHROMIUM, CHROMIUM_ARGS, running_app

STRONG_PASSWORD = "Correct-Horse-42"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Set by `make test`, which starts a throwaway PostgreSQL cluster (tests/pg_cluster.sh).
PG_ADMIN_URL = os.environ.get("CNOP_TEST_DATABASE_URL", "")
DB_BACKENDS = ["sqlite", "postgresql"] if PG_ADMIN_URL else ["sqlite"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the alembic migrations once; each test copies the resulting file."""
    path = tmp_path_factory.mktemp("template") / "cnop.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def cnop_env(tmp_path: Path, migrated_template: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clean CNOP environment: temp data dir, migrated SQLite DB, no cloud, test-sized limits."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for key in list(os.environ):
        if key.startswith("CNOP_"):
            monkeypatch.delenv(key)
    shutil.copy(migrated_template, data_dir / "cnop.db")
    monkeypatch.setenv("CNOP_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CNOP_ENV", "development")
    monkeypatch.setenv("CNOP_JWT_SECRET", "test-secret-" + "x" * 40)
    monkeypatch.setenv("CNOP_LOG_JSON", "false")
    monkeypatch.setenv("CNOP_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("CNOP_MARKET_SOURCE", "snapshot")
    reset_settings()
    dispose_engines()
    yield data_dir
    dispose_engines()
    reset_settings()


@pytest.fixture
def client(cnop_env: Path) -> Iterator[TestClient]:
    with TestClient(create_api(), raise_server_exceptions=False) as test_client:
        yield test_client


def user_payload(username: str = "alice_01", **overrides: Any) -> dict[str, Any]:
    data = {
        "username": username,
        "email": f"{username}@example.com",
        "password": STRONG_PASSWORD,
        "first_name": "Alice",
        "last_name": "Smith",
    }
    data.update(overrides)
    return data


def register_and_login(client: TestClient, username: str = "alice_01") -> dict[str, str]:
    """Register a user through the API and return its Authorization header."""
    response = client.post("/api/v1/auth/register", json=user_payload(username))
    assert response.status_code == 201, response.text
    response = client.post("/api/v1/auth/login", json={"username": username, "password": STRONG_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def auth_headers(client: TestClient) -> dict[str, str]:
    return register_and_login(client)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, migrated database on the test cluster; dropped afterwards."""
    name = "cnop_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        migrate(url)
        yield url
    finally:
        dispose_engines()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=DB_BACKENDS)
def any_db(request: pytest.FixtureRequest, cnop_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test on SQLite and, when `make test` provides one, on PostgreSQL."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    with fresh_postgres_database() as url:
        monkeypatch.setenv("CNOP_DATABASE_URL", url)
        reset_settings()
        dispose_engines()
        yield "postgresql"
    reset_settings()
    dispose_engines()


# ---------------------------------------------------------------- browser tests


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app as `make run` starts it, on a simulated market that refreshes every 3 seconds."""
    settings = {
        "CNOP_MARKET_SOURCE": "simulated",
        "CNOP_REFRESH_ACTIVE_SECONDS": "3",
        "CNOP_REFRESH_IDLE_SECONDS": "3",
    }
    with running_app(tmp_path_factory.mktemp("app"), free_port(), settings) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    yield pg
    context.close()


def shot(page: Page, name: str) -> None:
    """Save a screenshot for people to look at (test-artifacts/, ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
