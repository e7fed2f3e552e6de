"""The shared number formatting (UI.md) and the settings module."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from cnop_app import formatting
from cnop_app.config import ConfigError, load_settings


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12345.67", "$12,345.67"),
        ("0.000123", "$0.000123"),
        ("0.5", "$0.50"),
        ("0.123456789", "$0.123457"),
        ("-5", "-$5.00"),
        ("0", "$0.00"),
        (None, "—"),
    ],
)
def test_usd(value: str | None, expected: str) -> None:
    assert formatting.usd(Decimal(value) if value is not None else None) == expected


def test_compact_quantity_percent_direction() -> None:
    assert formatting.usd_compact(Decimal("1234567890123")) == "$1.23T"
    assert formatting.usd_compact(Decimal("45600000000")) == "$45.6B"
    assert formatting.usd_compact(Decimal("123456789")) == "$123M"
    assert formatting.usd_compact(Decimal("999")) == "$999.00"
    assert formatting.quantity(Decimal("1.50000000")) == "1.5"
    assert formatting.quantity(Decimal("1234.123456789")) == "1,234.12345679"
    assert formatting.quantity(Decimal("0")) == "0"
    assert formatting.percent(Decimal("3.14159")) == "+3.14 %"
    assert formatting.percent(Decimal("-0.5")) == "-0.50 %"
    assert formatting.percent(0) == "0.00 %"
    assert formatting.percent(Decimal("-0.001")) == "0.00 %"
    assert formatting.direction(Decimal("-0.001")) == "flat"
    assert [formatting.direction(v) for v in ("1", "-1", "0", None)] == ["up", "down", "flat", "flat"]


def test_times() -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
    assert formatting.relative_time(now - timedelta(seconds=10), now) == "just now"
    assert formatting.relative_time(now - timedelta(minutes=2), now) == "2 min ago"
    assert formatting.relative_time(now - timedelta(hours=5), now) == "5 h ago"
    assert formatting.relative_time(now - timedelta(days=30), now) == "2026-10-30"
    assert formatting.utc_exact(now) == "2026-11-29 12:00:00 UTC"


def test_settings_defaults_and_dev_secret_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CNOP_JWT_SECRET", "CNOP_DATABASE_URL", "CNOP_ENV", "CNOP_PORT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CNOP_DATA_DIR", str(tmp_path))
    first = load_settings()
    assert first.port == 3000 and first.env == "development"
    assert first.database_url == f"sqlite:///{tmp_path / 'cnop.db'}"
    assert first.daily_deposit_limit == Decimal("10000") and first.daily_withdraw_limit == Decimal("5000")
    assert len(first.jwt_secret) >= 32
    assert load_settings().jwt_secret == first.jwt_secret
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0


def test_production_refuses_to_start_without_a_strong_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CNOP_ENV", "production")
    monkeypatch.delenv("CNOP_JWT_SECRET", raising=False)
    with pytest.raises(ConfigError, match="required in production"):
        load_settings()
    monkeypatch.setenv("CNOP_JWT_SECRET", "too-short")
    with pytest.raises(ConfigError, match="at least 32"):
        load_settings()
    monkeypatch.setenv("CNOP_JWT_SECRET", "s" * 40)
    assert load_settings().is_production


def test_bad_settings_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CNOP_PORT", "eighty")
    with pytest.raises(ConfigError, match="CNOP_PORT"):
        load_settings()
    monkeypatch.setenv("CNOP_PORT", "3000")
    monkeypatch.setenv("CNOP_ENV", "staging")
    with pytest.raises(ConfigError, match="CNOP_ENV"):
        load_settings()
    monkeypatch.setenv("CNOP_ENV", "development")
    monkeypatch.setenv("CNOP_DATABASE_URL", "postgresql://u:p@db/cnop")
    assert load_settings().database_url == "postgresql+psycopg://u:p@db/cnop"
