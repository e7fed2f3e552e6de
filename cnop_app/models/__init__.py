"""SQLModel tables: the source of truth. Money and quantities are exact decimals (ExactDecimal)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from cnop_app.db import ExactDecimal, UTCDateTime


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def money_field(default: Decimal = Decimal(0), nullable: bool = False) -> Decimal:
    return Field(default=default, sa_column=Column(ExactDecimal(), nullable=nullable))


def optional_decimal() -> Decimal | None:
    return Field(default=None, sa_column=Column(ExactDecimal(), nullable=True))


# ---------------------------------------------------------------- users, sessions, audit


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=30, unique=True, index=True)
    email: str = Field(max_length=254, unique=True, index=True)
    password_hash: str = Field(max_length=255)
    first_name: str = Field(max_length=50)
    last_name: str = Field(max_length=50)
    phone: str | None = Field(default=None, max_length=15)
    date_of_birth: date | None = None
    marketing_emails_consent: bool = False
    role: str = Field(default="customer", max_length=16)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AuthSession(SQLModel, table=True):
    """One row per issued token; revoking it ends the session everywhere."""

    __tablename__ = "auth_sessions"

    jti: str = Field(primary_key=True, max_length=64)
    username: str = Field(index=True, max_length=30)
    issued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    user_agent: str | None = Field(default=None, max_length=255)
    ip: str | None = Field(default=None, max_length=64)


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    event_type: str = Field(max_length=40, index=True)
    username: str | None = Field(default=None, max_length=30, index=True)
    actor: str | None = Field(default=None, max_length=30)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=255)
    request_id: str | None = Field(default=None, max_length=128, index=True)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))


# ---------------------------------------------------------------- cash accounts


class Account(SQLModel, table=True):
    """Cash per user. `cash` always equals the sum of the user's ledger entries."""

    __tablename__ = "accounts"

    username: str = Field(primary_key=True, max_length=30)
    cash: Decimal = money_field()
    held: Decimal = money_field()
    version: int = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LedgerEntry(SQLModel, table=True):
    """Append-only record of every balance change."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_user_id", "username", "id"),
        Index("ix_ledger_user_type_created", "username", "entry_type", "created_at"),  # daily limits
    )

    id: int | None = Field(default=None, primary_key=True)
    transaction_id: str = Field(max_length=36, unique=True)
    username: str = Field(max_length=30)
    entry_type: str = Field(max_length=24)
    amount: Decimal = money_field()
    balance_after: Decimal = money_field()
    reference: str | None = Field(default=None, max_length=64, index=True)
    description: str = Field(default="", max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a request carrying an Idempotency-Key, replayed on retries."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("username", "scope", "key", name="uq_idempotency"),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=30)
    scope: str = Field(max_length=40)
    key: str = Field(max_length=128)
    request_hash: str = Field(max_length=64)
    status_code: int
    response_body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---------------------------------------------------------------- market data


class Asset(SQLModel, table=True):
    __tablename__ = "assets"

    id: str = Field(primary_key=True, max_length=10)
    coingecko_id: str | None = Field(default=None, max_length=100, index=True)
    name: str = Field(max_length=100)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    category: str = Field(default="crypto", max_length=40)
    image: str | None = Field(default=None, max_length=500)
    is_active: bool = True
    price_usd: Decimal | None = optional_decimal()
    market_cap: Decimal | None = optional_decimal()
    market_cap_rank: int | None = Field(default=None, index=True)
    total_volume_24h: Decimal | None = optional_decimal()
    high_24h: Decimal | None = optional_decimal()
    low_24h: Decimal | None = optional_decimal()
    price_change_24h: Decimal | None = optional_decimal()
    price_change_percentage_24h: Decimal | None = optional_decimal()
    price_change_percentage_7d: Decimal | None = optional_decimal()
    price_change_percentage_30d: Decimal | None = optional_decimal()
    circulating_supply: Decimal | None = optional_decimal()
    total_supply: Decimal | None = optional_decimal()
    max_supply: Decimal | None = optional_decimal()
    ath: Decimal | None = optional_decimal()
    ath_change_percentage: Decimal | None = optional_decimal()
    ath_date: datetime | None = Field(default=None, sa_type=UTCDateTime)
    atl: Decimal | None = optional_decimal()
    atl_change_percentage: Decimal | None = optional_decimal()
    atl_date: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sparkline_7d: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    last_updated: datetime | None = Field(default=None, sa_type=UTCDateTime)
    source: str = Field(default="snapshot", max_length=16)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AssetLogo(SQLModel, table=True):
    """A coin logo fetched from the feed and served by CNOP (pages make no third-party requests)."""

    __tablename__ = "asset_logos"

    asset_id: str = Field(primary_key=True, max_length=10)
    source_url: str = Field(max_length=500)
    content_type: str = Field(max_length=40)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sha256: str = Field(max_length=64)
    fetched_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PriceTick(SQLModel, table=True):
    __tablename__ = "price_ticks"
    __table_args__ = (Index("ix_price_ticks_asset_at", "asset_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    asset_id: str = Field(max_length=10)
    price: Decimal = money_field()
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---------------------------------------------------------------- trading


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("username", "client_order_id", name="uq_orders_client_order_id"),
        Index("ix_orders_user_created", "username", "created_at"),
        Index("ix_orders_status_asset", "status", "asset_id"),
    )

    order_id: str = Field(primary_key=True, max_length=36)
    client_order_id: str | None = Field(default=None, max_length=64)
    username: str = Field(max_length=30)
    asset_id: str = Field(max_length=10)
    order_type: str = Field(max_length=16)
    status: str = Field(default="pending", max_length=16)
    quantity: Decimal = money_field()
    limit_price: Decimal | None = optional_decimal()
    executed_price: Decimal | None = optional_decimal()
    total_amount: Decimal = money_field()
    fee: Decimal = money_field()
    held_amount: Decimal = money_field()
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reject_reason: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Holding(SQLModel, table=True):
    __tablename__ = "holdings"

    username: str = Field(primary_key=True, max_length=30)
    asset_id: str = Field(primary_key=True, max_length=10)
    quantity: Decimal = money_field()
    held_quantity: Decimal = money_field()
    average_cost: Decimal = money_field()
    realized_pnl: Decimal = money_field()
    version: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AssetTransaction(SQLModel, table=True):
    """One fill: BUY or SELL of an asset by a user."""

    __tablename__ = "asset_transactions"
    __table_args__ = (Index("ix_asset_tx_user_asset", "username", "asset_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=30)
    asset_id: str = Field(max_length=10)
    order_id: str = Field(max_length=36, index=True)
    transaction_type: str = Field(max_length=8)
    quantity: Decimal = money_field()
    price: Decimal = money_field()
    total_amount: Decimal = money_field()
    fee: Decimal = money_field()
    status: str = Field(default="completed", max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PortfolioSnapshot(SQLModel, table=True):
    """Portfolio value at one price refresh, for the value-over-time chart."""

    __tablename__ = "portfolio_snapshots"
    # By user for the chart; by time alone for the pruning after each refresh.
    __table_args__ = (
        Index("ix_portfolio_snapshots_user_at", "username", "at"),
        Index("ix_portfolio_snapshots_at", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=30)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    cash: Decimal = money_field()
    holdings_value: Decimal = money_field()
    total_value: Decimal = money_field()


# ---------------------------------------------------------------- infrastructure


class Outbox(SQLModel, table=True):
    """A change record written in the same transaction as the change; drained to DynamoDB."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "processed_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    entity: str = Field(max_length=32)
    entity_key: str = Field(max_length=200)
    operation: str = Field(default="upsert", max_length=8)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Lease(SQLModel, table=True):
    """A named lease with expiry: exactly one holder per deployment (price refresher, drainer)."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    acquired_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LoginThrottle(SQLModel, table=True):
    """Failed-login counters per (username, client IP) and per client IP, shared by every process."""

    __tablename__ = "login_throttles"

    key: str = Field(primary_key=True, max_length=80)
    failures: int = 0
    window_started_at: datetime = Field(sa_type=UTCDateTime)
    blocked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # sha256 of the username on (username, IP) rows, so an admin can clear one user's counters.
    username_hash: str | None = Field(default=None, max_length=64, index=True)


class WatchlistItem(SQLModel, table=True):
    """An asset a user starred: shown live on the dashboard."""

    __tablename__ = "watchlist_items"

    username: str = Field(primary_key=True, max_length=30)
    asset_id: str = Field(primary_key=True, max_length=10)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class KeyValue(SQLModel, table=True):
    """Small persistent facts (market status, last good refresh) shared by worker processes."""

    __tablename__ = "key_values"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


__all__ = [
    "Account",
    "Asset",
    "AssetLogo",
    "AssetTransaction",
    "AuditEvent",
    "AuthSession",
    "Holding",
    "IdempotencyRecord",
    "KeyValue",
    "LoginThrottle",
    "Lease",
    "LedgerEntry",
    "Order",
    "Outbox",
    "PortfolioSnapshot",
    "PriceTick",
    "User",
    "WatchlistItem",
    "utcnow",
]
