"""Every CNOP setting in one place: typed, validated and documented below.

Values come from CNOP_* environment variables first, then from a `.env` file in the working directory
(dotenv format, e.g. `CNOP_FEE_BPS=10`), then the defaults below, which are safe for a single machine.
An empty value counts as unset. A bad value stops the app with a ConfigError naming the variable.
"""

from __future__ import annotations

import logging
import os
import secrets
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import limits
from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cnop_app.domain.network import Network, parse_networks

MIN_SECRET_LENGTH = 32
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the app refuses to start."""


def _money(default: str, description: str) -> Any:
    return Field(Decimal(default), ge=0, allow_inf_nan=False, description=description)


class ServerSettings(BaseSettings):
    """The settings rxconfig.py needs too; reading them has no side effects.

    `make run` passes CNOP_PORT on Reflex's command line, so there the port comes from the environment
    (or `make run CNOP_PORT=...`), not from `.env`.
    """

    model_config = SettingsConfigDict(
        env_prefix="CNOP_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    port: int = Field(3000, ge=1, le=65535, description="the one port serving UI, websocket and API")
    public_url: str = Field(
        "", description="URL browsers use to reach the app (behind a proxy); default http://localhost:$CNOP_PORT"
    )
    redis_url: str | None = Field(
        None,
        description=(
            "Redis for Reflex's UI state (`redis://host:6379/0`); with it an instance runs several workers "
            "and any number of instances share one deployment. Same as REFLEX_REDIS_URL"
        ),
    )

    ui_state_lease_seconds: int = Field(
        30,
        ge=0,
        le=300,
        description=(
            "with Redis: how long a worker keeps a tab's UI state in memory between writes to Redis, holding "
            "the tab's lock (Reflex's opportunistic lock); 0 reads and writes Redis on every event"
        ),
    )

    @property
    def redis_lock_ms(self) -> int:
        """Reflex's lock on a tab's state in Redis (its default: 10 s) outlives the lease by a second."""
        return max(10_000, (self.ui_state_lease_seconds + 1) * 1000)

    @property
    def shared_redis_url(self) -> str | None:
        """The Redis every worker and instance shares: CNOP_REDIS_URL, else REFLEX_REDIS_URL."""
        return self.redis_url or os.environ.get("REFLEX_REDIS_URL", "").strip() or None

    @property
    def shared_ui_state(self) -> bool:
        """True when Reflex keeps UI state in Redis: several worker processes, maybe several instances."""
        return self.shared_redis_url is not None

    @property
    def cors_origins(self) -> list[str]:
        """Browser origins allowed to call the backend with credentials: the public URL's origin.

        A loopback public URL also allows its loopback twins (localhost, 127.0.0.1, [::1]) on the same
        port: the same machine, reached by another name.
        """
        url = urlsplit(self.public_url)
        scheme, host = url.scheme.lower(), (url.hostname or "").lower()
        default_port = {"http": 80, "https": 443}.get(scheme)
        port = "" if url.port in (None, default_port) else f":{url.port}"
        hosts = [host]
        if host in _LOOPBACK_HOSTS:
            hosts += [other for other in _LOOPBACK_HOSTS if other != host]
        return [f"{scheme}://{f'[{name}]' if ':' in name else name}{port}" for name in hosts]

    @model_validator(mode="before")
    @classmethod
    def _strip(cls, data: Any) -> Any:
        # Surrounding blanks are noise from shells and .env files; a blank value means "use the default".
        if not isinstance(data, dict):
            return data
        stripped = {key: value.strip() if isinstance(value, str) else value for key, value in data.items()}
        return {key: value for key, value in stripped.items() if value != ""}

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str, info: ValidationInfo) -> str:
        return value or f"http://localhost:{info.data.get('port', 3000)}"


class Settings(ServerSettings):
    """Everything else; each field is CNOP_<FIELD NAME> (aws_region: AWS_REGION or AWS_DEFAULT_REGION)."""

    env: Literal["development", "production"] = Field("development", description="`development` or `production`")
    data_dir: Path = Field(Path("./data"), description="SQLite file, generated dev secret")
    database_url: str = Field(
        "", description="default sqlite:///$CNOP_DATA_DIR/cnop.db; e.g. `postgresql://user:pass@host/db`"
    )
    jwt_secret: str = Field(
        "",
        repr=False,
        description="generated once into the data dir (development); required, >= 32 chars, in production",
    )
    jwt_expire_minutes: int = Field(60, ge=1, description="token lifetime")
    daily_deposit_limit: Decimal = _money("10000", "per user per UTC day")
    daily_withdraw_limit: Decimal = _money("5000", "per user per UTC day")
    admin_username: str | None = Field(None, description="create or promote this admin at start when both are set")
    admin_password: str | None = Field(None, repr=False, description="the admin's password (with CNOP_ADMIN_USERNAME)")
    max_body_bytes: int = Field(65536, ge=1024, description="larger API request bodies get 413")
    login_max_failures: int = Field(
        5, ge=1, description="failed logins per username and client IP before growing delays (15 s, doubling)"
    )
    login_ip_max_failures: int = Field(
        50, ge=1, description="failed logins from one client IP, any usernames, before growing delays"
    )
    login_lockout_seconds: int = Field(900, ge=1, description="window of the failure counts, and the longest delay")
    log_level: str = Field("INFO", description="log level")
    log_json: bool = Field(True, description="JSON log lines with request ids")
    dynamodb_endpoint: str | None = Field(
        None, description="unset: mirror off; `http://host:port` or `aws` to mirror every write to DynamoDB"
    )
    dynamodb_table_prefix: str = Field("cnop-", description="DynamoDB table name prefix")
    dynamodb_mirror_secrets: bool = Field(False, description="also mirror password hashes")
    aws_region: str = Field(
        "us-east-1",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"),
        description="DynamoDB region (AWS_REGION, else AWS_DEFAULT_REGION)",
    )
    market_source: Literal["coingecko", "snapshot", "simulated"] = Field(
        "coingecko", description="`coingecko`, `snapshot` (static, offline) or `simulated` (random walk)"
    )
    coingecko_base_url: str = Field("https://api.coingecko.com/api/v3", description="price feed base URL")
    coingecko_api_key: str | None = Field(None, repr=False, description="sent as the demo or pro key header")
    coingecko_api_key_type: Literal["demo", "pro"] = Field("demo", description="`demo` or `pro`")
    market_coins: int = Field(100, ge=1, description="coins fetched per refresh (one call, max 250)")
    refresh_active_seconds: int = Field(300, ge=1, description="refresh interval while people use the app")
    refresh_idle_seconds: int = Field(1800, ge=1, description="refresh interval while idle")
    idle_after_seconds: int = Field(600, ge=1, description="no activity for this long means idle")
    ui_state_keep_seconds: int = Field(
        300, ge=1, description="a closed browser tab's UI state is kept this long (one worker, no Redis)"
    )
    breaker_failures: int = Field(5, ge=1, description="consecutive feed failures that open the circuit breaker")
    breaker_reset_seconds: int = Field(60, ge=1, description="how long the breaker stays open before one trial call")
    simulated_seed: int = Field(42, ge=0, description="seed of the simulated market")
    max_order_value: Decimal = _money("10000", "largest order value in USD")
    fee_bps: Decimal = _money("0", "trading fee in basis points, booked as its own ledger entry")
    run_scheduler: bool = Field(
        True, description="run the price refresher in this process (one per deployment holds a lease)"
    )
    trusted_proxies: str = Field(
        "",
        description=(
            "proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For names the client; empty: trust none"
        ),
    )
    metrics_token: str | None = Field(
        None,
        repr=False,
        description="when set, /metrics requires `Authorization: Bearer <token>`; /health details only with it",
    )
    rate_limit_enabled: bool = Field(True, description="rate-limit the REST API per user and per client IP (429)")
    rate_limit_auth: str = Field("10/minute", description="per user: login, register, password change")
    rate_limit_auth_ip: str = Field("30/minute", description="per client IP: login, register, password change")
    rate_limit_write: str = Field("20/second", description="per user: other API writes (orders, cash, profile)")
    rate_limit_write_ip: str = Field("100/second", description="per client IP: other API writes")
    rate_limit_read: str = Field("50/second", description="per user: API reads (GET)")
    rate_limit_read_ip: str = Field("200/second", description="per client IP: API reads (GET)")
    shutdown_grace_seconds: int = Field(
        8, ge=1, le=300, description="on SIGTERM, how long background work (a refresh, a mirror batch) may finish"
    )

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @field_validator("env", "market_source", "coingecko_api_key_type", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in logging.getLevelNamesMapping():
            raise ValueError(f"must be a log level such as DEBUG, INFO or WARNING, got {value!r}")
        return value.upper()

    @field_validator("coingecko_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return value.rstrip("/")

    # The validators below run in field order, so each sees the fields declared before it in info.data.
    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, value: Path) -> Path:
        value = value.resolve()
        value.mkdir(parents=True, exist_ok=True)
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str, info: ValidationInfo) -> str:
        if not value and "data_dir" in info.data:
            return f"sqlite:///{info.data['data_dir'] / 'cnop.db'}"
        # SQLAlchemy needs the driver spelled out; people paste plain postgres URLs.
        for scheme in ("postgres://", "postgresql://"):
            if value.startswith(scheme):
                return "postgresql+psycopg://" + value[len(scheme) :]
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _jwt_secret(cls, value: str, info: ValidationInfo) -> str:
        if value:
            if len(value) < MIN_SECRET_LENGTH:
                raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
            return value
        if info.data.get("env") == "production":
            raise ValueError(f"is required in production (at least {MIN_SECRET_LENGTH} random characters)")
        if "data_dir" not in info.data:
            return value  # the data dir's own error is reported
        return _dev_secret(info.data["data_dir"])

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        parse_networks(value)  # a bad entry stops the start with its name
        return value

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @field_validator(
        "rate_limit_auth",
        "rate_limit_auth_ip",
        "rate_limit_write",
        "rate_limit_write_ip",
        "rate_limit_read",
        "rate_limit_read_ip",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        # limits' notation, one rate per setting: "20/second", "10 per minute", "1000/hour".
        try:
            items = limits.parse_many(value)
        except ValueError as exc:
            raise ValueError(f"must be a rate such as 20/second or 10/minute, got {value!r}") from exc
        if len(items) != 1 or items[0].amount < 1:
            raise ValueError(f"must be one rate such as 20/second or 10/minute, got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_database_for_many_processes(self) -> Settings:
        # SQLite is one file on one machine: several workers (Redis configured) or instances on it meet
        # on the file lock (seconds-long waits under load), and instances on other hosts cannot share it.
        if self.is_sqlite and self.shared_ui_state:
            message = (
                "several workers or instances (CNOP_REDIS_URL / REFLEX_REDIS_URL is set) need PostgreSQL: "
                "set CNOP_DATABASE_URL=postgresql://..."
            )
            if self.is_production:
                raise ValueError(message)
            logging.getLogger("cnop.config").warning("SQLite with Redis: %s", message)
        return self


def _dev_secret(data_dir: Path) -> str:
    # Generated once and kept in the data dir so development sessions survive restarts.
    path = data_dir / "jwt_secret"
    if path.exists():
        stored = path.read_text().strip()
        if len(stored) >= MIN_SECRET_LENGTH:
            return stored
    stored = secrets.token_urlsafe(48)
    path.write_text(stored + "\n")
    path.chmod(0o600)
    return stored


def _variable(model: type[BaseSettings], field: str) -> str:
    alias = model.model_fields[field].validation_alias if field in model.model_fields else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"CNOP_{field.upper()}"


def _describe(model: type[BaseSettings], error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "database_url"  # whole-model rules are about the DB
        variable = _variable(model, field)
        message = str(item["ctx"]["error"]) if item["type"] == "value_error" else item["msg"]
        secret = field in model.model_fields and not model.model_fields[field].repr
        shown = "" if secret or item["type"] == "value_error" else f" (got {item['input']!r})"
        problems.append(f"{variable}: {message}{shown}")
    return "; ".join(problems)


_S = TypeVar("_S", bound=BaseSettings)


def _load(model: type[_S]) -> _S:
    try:
        return model()
    except ValidationError as exc:
        raise ConfigError(_describe(model, exc)) from None


def load_server_settings() -> ServerSettings:
    """Port and public URL only, without touching the data dir (rxconfig.py)."""
    return _load(ServerSettings)


def load_settings() -> Settings:
    """Read the environment and `.env` now (tests call this after changing variables)."""
    return _load(Settings)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings (tests that change the environment)."""
    get_settings.cache_clear()
