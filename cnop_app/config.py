"""One settings object, read from CNOP_* environment variables with safe embedded defaults."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

ENVIRONMENTS = ("development", "production")
MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the app refuses to start."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _decimal(name: str, default: str) -> Decimal:
    raw = _env(name, default)
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise ConfigError(f"{name} must be a decimal number, got {raw!r}") from exc
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{name} must be a non-negative number, got {raw!r}")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = _env(name, "true" if default else "false").lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


MARKET_SOURCES = ("coingecko", "snapshot", "simulated")


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _env(name, default).lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {choices}, got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    env: str
    port: int
    data_dir: Path
    database_url: str
    jwt_secret: str = field(repr=False)
    jwt_expire_minutes: int
    daily_deposit_limit: Decimal
    daily_withdraw_limit: Decimal
    admin_username: str | None
    admin_password: str | None = field(repr=False)
    max_body_bytes: int
    login_max_failures: int
    login_lockout_seconds: int
    log_level: str
    log_json: bool
    dynamodb_endpoint: str | None
    dynamodb_table_prefix: str
    dynamodb_mirror_secrets: bool
    aws_region: str
    market_source: str
    coingecko_base_url: str
    coingecko_api_key: str | None = field(repr=False)
    coingecko_api_key_type: str
    market_coins: int
    refresh_active_seconds: int
    refresh_idle_seconds: int
    idle_after_seconds: int
    breaker_failures: int
    breaker_reset_seconds: int
    simulated_seed: int
    max_order_value: Decimal
    fee_bps: Decimal
    run_scheduler: bool

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _jwt_secret(env: str, data_dir: Path) -> str:
    secret = _env("CNOP_JWT_SECRET", "")
    if secret:
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigError(f"CNOP_JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters")
        return secret
    if env == "production":
        raise ConfigError("CNOP_JWT_SECRET is required in production (at least 32 random characters)")
    # Development: generate once and keep it in the data dir so sessions survive restarts.
    path = data_dir / "jwt_secret"
    if path.exists():
        stored = path.read_text().strip()
        if len(stored) >= MIN_SECRET_LENGTH:
            return stored
    data_dir.mkdir(parents=True, exist_ok=True)
    stored = secrets.token_urlsafe(48)
    path.write_text(stored + "\n")
    path.chmod(0o600)
    return stored


def load_settings() -> Settings:
    """Read the environment now (tests call this after changing variables)."""
    env = _env("CNOP_ENV", "development").lower()
    if env not in ENVIRONMENTS:
        raise ConfigError(f"CNOP_ENV must be one of {ENVIRONMENTS}, got {env!r}")
    data_dir = Path(_env("CNOP_DATA_DIR", "./data")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = _env("CNOP_DATABASE_URL", f"sqlite:///{data_dir / 'cnop.db'}")
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgres://") :]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]
    admin_username = _env("CNOP_ADMIN_USERNAME", "") or None
    admin_password = _env("CNOP_ADMIN_PASSWORD", "") or None
    return Settings(
        env=env,
        port=_int("CNOP_PORT", 3000, minimum=1),
        data_dir=data_dir,
        database_url=database_url,
        jwt_secret=_jwt_secret(env, data_dir),
        jwt_expire_minutes=_int("CNOP_JWT_EXPIRE_MINUTES", 60, minimum=1),
        daily_deposit_limit=_decimal("CNOP_DAILY_DEPOSIT_LIMIT", "10000"),
        daily_withdraw_limit=_decimal("CNOP_DAILY_WITHDRAW_LIMIT", "5000"),
        admin_username=admin_username,
        admin_password=admin_password,
        max_body_bytes=_int("CNOP_MAX_BODY_BYTES", 65536, minimum=1024),
        login_max_failures=_int("CNOP_LOGIN_MAX_FAILURES", 5, minimum=1),
        login_lockout_seconds=_int("CNOP_LOGIN_LOCKOUT_SECONDS", 900, minimum=0),
        log_level=_env("CNOP_LOG_LEVEL", "INFO").upper(),
        log_json=_bool("CNOP_LOG_JSON", True),
        dynamodb_endpoint=_env("CNOP_DYNAMODB_ENDPOINT", "") or None,
        dynamodb_table_prefix=_env("CNOP_DYNAMODB_TABLE_PREFIX", "cnop-"),
        dynamodb_mirror_secrets=_bool("CNOP_DYNAMODB_MIRROR_SECRETS", False),
        aws_region=_env("AWS_REGION", _env("AWS_DEFAULT_REGION", "us-east-1")),
        market_source=_choice("CNOP_MARKET_SOURCE", "coingecko", MARKET_SOURCES),
        coingecko_base_url=_env("CNOP_COINGECKO_BASE_URL", "https://api.coingecko.com/api/v3").rstrip("/"),
        coingecko_api_key=_env("CNOP_COINGECKO_API_KEY", "") or None,
        coingecko_api_key_type=_choice("CNOP_COINGECKO_API_KEY_TYPE", "demo", ("demo", "pro")),
        market_coins=_int("CNOP_MARKET_COINS", 100, minimum=1),
        refresh_active_seconds=_int("CNOP_REFRESH_ACTIVE_SECONDS", 300, minimum=1),
        refresh_idle_seconds=_int("CNOP_REFRESH_IDLE_SECONDS", 1800, minimum=1),
        idle_after_seconds=_int("CNOP_IDLE_AFTER_SECONDS", 600, minimum=1),
        breaker_failures=_int("CNOP_BREAKER_FAILURES", 5, minimum=1),
        breaker_reset_seconds=_int("CNOP_BREAKER_RESET_SECONDS", 60, minimum=1),
        simulated_seed=_int("CNOP_SIMULATED_SEED", 42),
        max_order_value=_decimal("CNOP_MAX_ORDER_VALUE", "10000"),
        fee_bps=_decimal("CNOP_FEE_BPS", "0"),
        run_scheduler=_bool("CNOP_RUN_SCHEDULER", True),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings (tests that change the environment)."""
    get_settings.cache_clear()
