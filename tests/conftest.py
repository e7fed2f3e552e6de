"""Shared fixtures: every test gets its own data dir and a freshly migrated SQLite database."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnop_app.config import reset_settings
from cnop_app.db import dispose_engines
from cnop_app.manage import migrate
from tests.support.helpers import DB_BACKENDS, RedisServer, fresh_postgres_database


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


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server on its own port, gone after the test."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url
