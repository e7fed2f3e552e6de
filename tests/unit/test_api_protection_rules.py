"""Rules behind the API's protections: typed amounts, CORS origins, rate-limit settings and groups."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from cnop_app.api.ratelimit import route_group
from cnop_app.config import ConfigError, ServerSettings, load_settings
from cnop_app.domain.errors import ValidationFailed
from cnop_app.domain.money import parse_decimal
from cnop_app.services.ratelimit import storage_uri


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10", "10"),
        (" 10.50 ", "10.50"),
        ("0.5", "0.5"),
        (".5", "0.5"),
        ("5.", "5"),
        ("-5", "-5"),  # parsed; the rules that need a positive value refuse it with their own message
        ("1,000", "1000"),
        ("1,234,567.25", "1234567.25"),
    ],
)
def test_plain_decimal_text_parses(text: str, expected: str) -> None:
    assert parse_decimal(text, "amount") == Decimal(expected)


@pytest.mark.parametrize(
    "text",
    [
        "１０",  # full-width digits: Decimal() reads them as 10
        "1_0",  # Python's digit separator: Decimal() reads 10
        "٣",  # Arabic-Indic digit
        "1e3",
        "1E-2",
        "+5",
        "1.2.3",
        "1,5",  # a decimal comma is not a thousands separator: stripping it read 15
        "1,0",
        "12,34",
        "1,0000",
        ",100",
        "-",
        ".",
        "--1",
        "0x10",
        "NaN",
        "Infinity",
        "1 000",
    ],
)
def test_anything_but_ascii_digits_with_one_dot_is_refused(text: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_decimal(text, "amount")
    assert caught.value.field == "amount"


def test_json_numbers_are_read_by_their_decimal_text() -> None:
    assert parse_decimal(1e-05, "quantity") == Decimal("0.00001")
    assert parse_decimal(0.1, "quantity") == Decimal("0.1")
    assert parse_decimal(25, "amount") == Decimal(25)
    with pytest.raises(ValidationFailed):
        parse_decimal(float("nan"), "amount")
    with pytest.raises(ValidationFailed):
        parse_decimal(True, "amount")


@pytest.mark.parametrize(
    ("public_url", "origins"),
    [
        ("https://cnop.example.com", ["https://cnop.example.com"]),
        ("https://CNOP.example.com:443/app/", ["https://cnop.example.com"]),
        ("http://cnop.example.com:8080", ["http://cnop.example.com:8080"]),
        ("http://localhost:3000", ["http://localhost:3000", "http://127.0.0.1:3000", "http://[::1]:3000"]),
        ("http://127.0.0.1:8080", ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"]),
    ],
)
def test_cors_allows_only_the_public_urls_origin(public_url: str, origins: list[str]) -> None:
    assert ServerSettings(public_url=public_url).cors_origins == origins


def test_rate_limit_settings_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("CNOP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CNOP_RATE_LIMIT_WRITE", "5 per second")
    assert load_settings().rate_limit_write == "5 per second"
    for bad in ("fast", "10/fortnight", "10/second;20/minute", "0/second"):
        monkeypatch.setenv("CNOP_RATE_LIMIT_READ_IP", bad)
        with pytest.raises(ConfigError, match="CNOP_RATE_LIMIT_READ_IP"):
            load_settings()


def test_route_groups() -> None:
    prefix = "/api/v1"
    assert route_group("POST", "/api/v1/auth/login", prefix) == "auth"
    assert route_group("POST", "/api/v1/auth/register", prefix) == "auth"
    assert route_group("POST", "/api/v1/auth/password", prefix) == "auth"
    assert route_group("POST", "/api/v1/auth/logout", prefix) == "write"
    assert route_group("POST", "/api/v1/orders", prefix) == "write"
    assert route_group("DELETE", "/api/v1/auth/sessions/x", prefix) == "write"
    assert route_group("GET", "/api/v1/orders", prefix) == "read"
    assert route_group("GET", "/api/nowhere", prefix) == "read"
    for path in ("/health", "/metrics", "/docs", "/openapi.json", "/_event/", "/market"):
        assert route_group("GET", path, prefix) is None


def test_redis_urls_map_to_limits_async_storage() -> None:
    assert storage_uri(None) is None
    assert storage_uri("redis://redis:6379/0") == "async+redis://redis:6379/0"
    assert storage_uri("rediss://:pw@redis:6380/1") == "async+rediss://:pw@redis:6380/1"
    assert storage_uri("unix:///run/redis.sock?db=0") == "async+redis+unix:///run/redis.sock?db=0"
    with pytest.raises(ValueError):
        storage_uri("memcached://x")
