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
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings (tests that change the environment)."""
    get_settings.cache_clear()
