"""Settings of a deployment with several workers or instances."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from cnop_app.config import ConfigError, load_settings
from cnop_app.observability import multiprocess


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env here
    for key in list(os.environ):
        if key.startswith("CNOP_") or key in ("REFLEX_REDIS_URL", multiprocess.ENV):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CNOP_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_production_refuses_sqlite_with_several_workers(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_ENV", "production")
    monkeypatch.setenv("CNOP_JWT_SECRET", "s" * 40)
    monkeypatch.setenv("CNOP_REDIS_URL", "redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigError, match=r"CNOP_DATABASE_URL: several workers or instances .* need PostgreSQL"):
        load_settings()
    monkeypatch.delenv("CNOP_REDIS_URL")
    monkeypatch.setenv("REFLEX_REDIS_URL", "redis://127.0.0.1:6379/0")  # Reflex's own name counts too
    with pytest.raises(ConfigError):
        load_settings()
    monkeypatch.setenv("CNOP_DATABASE_URL", "postgresql://cnop@db/cnop")
    settings = load_settings()
    assert settings.shared_ui_state and settings.database_url.startswith("postgresql+psycopg://")


def test_development_warns_loudly_instead(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CNOP_REDIS_URL", "redis://127.0.0.1:6379/0")
    with caplog.at_level(logging.WARNING, logger="cnop.config"):
        settings = load_settings()
    assert settings.is_sqlite and "need PostgreSQL" in caplog.text


def test_one_process_on_sqlite_is_the_default(clean_env: Path) -> None:
    settings = load_settings()
    assert settings.is_sqlite and not settings.shared_ui_state
    assert settings.shutdown_grace_seconds == 8


def test_multiprocess_metrics_dir_is_fresh_unless_given(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = Path(multiprocess.prepare_multiprocess_metrics())
    try:
        assert made.is_dir() and not any(made.iterdir()) and os.environ[multiprocess.ENV] == str(made)
        assert multiprocess.prepare_multiprocess_metrics() == str(made)  # idempotent: workers inherit it
    finally:
        made.rmdir()
    given = clean_env / "metrics"
    monkeypatch.setenv(multiprocess.ENV, str(given))
    assert multiprocess.prepare_multiprocess_metrics() == str(given) and given.is_dir()
