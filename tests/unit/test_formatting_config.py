"""The shared number formatting, the settings module and the JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from cnop_app import formatting
from cnop_app.config import ConfigError, load_settings
from cnop_app.observability.logging import make_handler, request_id_var


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
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("CNOP_DATA_DIR", str(tmp_path))
    first = load_settings()
    assert first.port == 3000 and first.env == "development"
    assert first.database_url == f"sqlite:///{tmp_path / 'cnop.db'}"
    assert first.daily_deposit_limit == Decimal("10000") and first.daily_withdraw_limit == Decimal("5000")
    assert len(first.jwt_secret) >= 32
    assert load_settings().jwt_secret == first.jwt_secret
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0


def test_production_refuses_to_start_without_a_strong_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
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
    monkeypatch.chdir(tmp_path)
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


def test_settings_read_a_dotenv_file_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CNOP_FEE_BPS", "CNOP_MAX_ORDER_VALUE", "CNOP_MARKET_SOURCE", "CNOP_LOGIN_MAX_FAILURES"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CNOP_PORT", "5000")  # the environment wins over .env
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# local overrides\n"
        "CNOP_FEE_BPS=12.5\n"
        "CNOP_MAX_ORDER_VALUE=' 250 '\n"
        "CNOP_MARKET_SOURCE=Simulated\n"
        "CNOP_PORT=4000\n"
        "SOMETHING_ELSE=ignored\n"
    )
    settings = load_settings()
    assert settings.fee_bps == Decimal("12.5") and isinstance(settings.fee_bps, Decimal)
    assert settings.max_order_value == Decimal("250") and isinstance(settings.max_order_value, Decimal)
    assert settings.market_source == "simulated"
    assert settings.port == 5000
    dotenv.write_text("CNOP_LOGIN_MAX_FAILURES=zero\n")
    with pytest.raises(ConfigError, match="CNOP_LOGIN_MAX_FAILURES"):
        load_settings()


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = make_handler(json_logs=True, stream=stream)
    logger = logging.getLogger(f"cnop.test_json_{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_error_line_keeps_its_traceback_and_request_id(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log
    token = request_id_var.set("req-123")
    try:
        try:
            raise ValueError("bad fill")
        except ValueError:
            logger.exception("filling limit order failed", extra={"order_id": 7})
    finally:
        request_id_var.reset(token)
    logger.info("outside a request")
    error, info = _lines(stream)
    assert error["level"] == "ERROR" and error["logger"] == logger.name
    assert error["msg"] == "filling limit order failed" and error["order_id"] == 7
    assert error["request_id"] == "req-123"
    assert str(error["exc"]).startswith("Traceback (most recent call last)")
    assert "ValueError: bad fill" in str(error["exc"])
    assert datetime.fromisoformat(str(error["ts"])).tzinfo is not None
    assert "request_id" not in info and "exc" not in info


def test_json_error_line_without_an_exception_has_no_exc(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log
    logger.error("no exception here", exc_info=True)
    logger.exception("nor here")
    assert [line.get("exc") for line in _lines(stream)] == [None, None]
