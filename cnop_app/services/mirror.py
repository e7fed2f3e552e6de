"""DynamoDB mirror: drains the transactional outbox into DynamoDB tables in the reference layout.

SQL stays the source of truth. Every outbox row becomes one conditional PutItem (or DeleteItem)
carrying the row id as `mirror_seq`: `attribute_not_exists(key) OR mirror_seq < :seq`, so replays
and out-of-order duplicates never regress an item (a failed condition means "already newer": done).

One drainer per deployment (lease `mirror_drainer`). It reads undrained rows in id order, groups
them per item, writes the groups in parallel while keeping each item's rows in order (a failed row
blocks the item's later rows until it succeeds), marks rows done and backs off failed rows
exponentially. DynamoDB being down, throttling or a missing table never reaches the callers that
write outbox rows: the outbox just grows and drains later.

Tables (prefix `CNOP_DYNAMODB_TABLE_PREFIX`):
- `users`: Pk/Sk `<username>`/`USER`, `<username>`/`BALANCE`, `<username>`/`ASSET#<asset_id>`,
  `TRANS#<username>`/`<transaction_id>`, `ASSET_TRANS#<username>#<asset_id>`/`<timestamp>#<id>`;
  GSI `EmailIndex` on `email`.
- `orders`: Pk `<order_id>`, Sk `ORDER`; GSI `UserOrdersIndex` on `username` (range `created_at`).
- `inventory`: hash `product_id` = asset id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from prometheus_client import Counter, Gauge
from sqlalchemy import Date, func, text, update
from sqlmodel import Session, SQLModel, delete, select

from cnop_app.config import get_settings
from cnop_app.db import ExactDecimal, UTCDateTime, read_session, write_session
from cnop_app.models import Account, Asset, AssetTransaction, Holding, LedgerEntry, Order, Outbox, User
from cnop_app.observability.metrics import REGISTRY
from cnop_app.services import health, leases, outbox

log = logging.getLogger(__name__)

LEASE_NAME = "mirror_drainer"
LEASE_TTL_SECONDS = 60
POLL_SECONDS = 1.0
# After a commit wakes the drainer, wait this long so a burst of writes drains as one batch.
COALESCE_SECONDS = 0.05
BATCH_SIZE = 500
WORKERS = 8
RETRY_BASE_SECONDS = 0.5
RETRY_MAX_SECONDS = 300.0
LAG_DEGRADED_SECONDS = 60.0
PRUNE_AFTER = timedelta(days=7)
PRUNE_EVERY_SECONDS = 600.0
SEQ_ATTR = "mirror_seq"

THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "Throttling"}
)

# ---------------------------------------------------------------- metrics

MIRRORED = Counter(
    "cnop_mirror_items_mirrored_total",
    "Outbox rows written to DynamoDB, by table",
    ["table"],
    registry=REGISTRY,
)
STALE = Counter(
    "cnop_mirror_items_stale_total",
    "Outbox rows skipped because DynamoDB already held a newer version, by table",
    ["table"],
    registry=REGISTRY,
)
FAILED = Counter(
    "cnop_mirror_items_failed_total",
    "Failed DynamoDB writes of outbox rows (retried with back-off), by table",
    ["table"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge("cnop_mirror_outbox_depth", "Outbox rows not yet mirrored to DynamoDB", registry=REGISTRY)
OUTBOX_OLDEST_AGE = Gauge(
    "cnop_mirror_outbox_oldest_age_seconds", "Age of the oldest outbox row not yet mirrored", registry=REGISTRY
)


class MirrorDisabled(RuntimeError):
    """CNOP_DYNAMODB_ENDPOINT is not set."""


class MirrorError(RuntimeError):
    """A mirror tool (backfill) could not finish."""


# ---------------------------------------------------------------- table layout


@dataclass(frozen=True)
class TableSpec:
    kind: str
    key_attrs: tuple[str, ...]
    definition: dict[str, Any]


TABLES: dict[str, TableSpec] = {
    "users": TableSpec(
        "users",
        ("Pk", "Sk"),
        {
            "KeySchema": [{"AttributeName": "Pk", "KeyType": "HASH"}, {"AttributeName": "Sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [
                {"AttributeName": "Pk", "AttributeType": "S"},
                {"AttributeName": "Sk", "AttributeType": "S"},
                {"AttributeName": "email", "AttributeType": "S"},
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "EmailIndex",
                    "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            "BillingMode": "PAY_PER_REQUEST",
        },
    ),
    "orders": TableSpec(
        "orders",
        ("Pk", "Sk"),
        {
            "KeySchema": [{"AttributeName": "Pk", "KeyType": "HASH"}, {"AttributeName": "Sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [
                {"AttributeName": "Pk", "AttributeType": "S"},
                {"AttributeName": "Sk", "AttributeType": "S"},
                {"AttributeName": "username", "AttributeType": "S"},
                {"AttributeName": "created_at", "AttributeType": "S"},
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "UserOrdersIndex",
                    "KeySchema": [
                        {"AttributeName": "username", "KeyType": "HASH"},
                        {"AttributeName": "created_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            "BillingMode": "PAY_PER_REQUEST",
        },
    ),
    "inventory": TableSpec(
        "inventory",
        ("product_id",),
        {
            "KeySchema": [{"AttributeName": "product_id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "product_id", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    ),
}

ENTITY_TABLE = {
    "user": "users",
    "balance": "users",
    "ledger": "users",
    "holding": "users",
    "asset_transaction": "users",
    "order": "orders",
    "asset": "inventory",
}
ENTITY_MODEL: dict[str, type[SQLModel]] = {
    "user": User,
    "balance": Account,
    "ledger": LedgerEntry,
    "holding": Holding,
    "asset_transaction": AssetTransaction,
    "order": Order,
    "asset": Asset,
}
# SQL-only bookkeeping that is not part of the mirrored item (and changes without an outbox row).
EXCLUDED = {
    "user": {"id", "failed_logins", "locked_until"},
    "balance": set(),
    "ledger": {"id"},
    "holding": set(),
    "asset_transaction": set(),
    "order": set(),
    "asset": set(),
}
RENAMED = {
    "balance": {"cash": "current_balance"},
    "ledger": {"entry_type": "transaction_type"},
    "asset": {"id": "asset_id"},
}


def table_name(kind: str) -> str:
    return get_settings().dynamodb_table_prefix + kind


def _column_kinds(model: type[SQLModel]) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for column in model.__table__.columns:  # type: ignore[attr-defined]
        if isinstance(column.type, ExactDecimal):
            kinds[column.name] = "decimal"
        elif isinstance(column.type, UTCDateTime):
            kinds[column.name] = "datetime"
        elif isinstance(column.type, Date):
            kinds[column.name] = "date"
    return kinds


_KINDS = {entity: _column_kinds(model) for entity, model in ENTITY_MODEL.items()}


def _number(raw: Any) -> Decimal:
    """An exact DynamoDB number: no exponent, no trailing zeros (at most 38 significant digits)."""
    value = raw if isinstance(raw, Decimal) else Decimal(str(raw))
    return Decimal(format(value.normalize(), "f"))


def _timestamp(raw: Any) -> str:
    value = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat()


def _attributes(entity: str, payload: dict[str, Any]) -> dict[str, Any]:
    kinds = _KINDS[entity]
    excluded = set(EXCLUDED[entity])
    if entity == "user" and not get_settings().dynamodb_mirror_secrets:
        excluded.add("password_hash")
    renamed = RENAMED.get(entity, {})
    attrs: dict[str, Any] = {}
    for name, value in payload.items():
        if value is None or name in excluded:
            continue  # DynamoDB has no use for empty attributes; GSI keys must not be NULL
        kind = kinds.get(name)
        if kind == "decimal":
            value = _number(value)
        elif kind == "datetime":
            value = _timestamp(value)
        elif kind == "date":
            value = value.isoformat() if isinstance(value, date) else str(value)
        attrs[renamed.get(name, name)] = value
    return attrs


def item_key(entity: str, key: str, payload: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(table kind, DynamoDB key) of one entity."""
    if entity in ("user", "balance"):
        username = payload.get("username") or key
        return "users", {"Pk": username, "Sk": "USER" if entity == "user" else "BALANCE"}
    if entity == "holding":
        username, _, asset_id = key.partition("#")
        username = payload.get("username") or username
        asset_id = payload.get("asset_id") or asset_id
        return "users", {"Pk": username, "Sk": f"ASSET#{asset_id}"}
    if entity == "ledger":
        return "users", {"Pk": f"TRANS#{payload['username']}", "Sk": payload.get("transaction_id") or key}
    if entity == "asset_transaction":
        pk = f"ASSET_TRANS#{payload['username']}#{payload['asset_id']}"
        # Fills of one order book run share a timestamp: the id keeps the sort key unique.
        return "users", {"Pk": pk, "Sk": f"{_timestamp(payload['created_at'])}#{payload.get('id') or key}"}
    if entity == "order":
        return "orders", {"Pk": payload.get("order_id") or key, "Sk": "ORDER"}
    if entity == "asset":
        return "inventory", {"product_id": payload.get("id") or key}
    raise ValueError(f"unknown outbox entity {entity!r}")


def build_item(entity: str, key: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(table kind, full item without mirror_seq) for an entity snapshot."""
    kind, item_keys = item_key(entity, key, payload)
    item = _attributes(entity, payload)
    if entity == "ledger":
        item["status"] = "completed"
    item.update(item_keys)
    return kind, item


# ---------------------------------------------------------------- boto3 client

_client_lock = threading.Lock()
_clients: dict[tuple[str, str, bool], Any] = {}
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def enabled() -> bool:
    return outbox.enabled()


def get_client(*, tool: bool = False) -> Any:
    """The shared (thread-safe) low-level DynamoDB client for the configured endpoint.

    The drainer's client never retries by itself (rows back off instead); `tool=True` gives the
    operator commands (create-tables, backfill, verify) botocore's retries and longer timeouts.
    """
    settings = get_settings()
    endpoint = settings.dynamodb_endpoint
    if not endpoint:
        raise MirrorDisabled("CNOP_DYNAMODB_ENDPOINT is not set")
    cache_key = (endpoint, settings.aws_region, tool)
    with _client_lock:
        client = _clients.get(cache_key)
        if client is None:
            kwargs: dict[str, Any] = {
                "region_name": settings.aws_region,
                "config": Config(
                    retries={"max_attempts": 8 if tool else 1, "mode": "standard"},
                    connect_timeout=5 if tool else 2,
                    read_timeout=60 if tool else 10,
                    max_pool_connections=WORKERS * 2,
                    # Items are built here, always well-formed; validation costs ~25% of the client CPU.
                    parameter_validation=False,
                ),
            }
            if endpoint.lower() != "aws":
                kwargs["endpoint_url"] = endpoint
                if not os.environ.get("AWS_ACCESS_KEY_ID"):
                    # A local server needs some credentials, never real ones.
                    kwargs["aws_access_key_id"] = "cnop-local"
                    kwargs["aws_secret_access_key"] = "cnop-local"
            client = boto3.session.Session().client("dynamodb", **kwargs)
            _clients[cache_key] = client
        return client


def reset_client() -> None:
    """Forget cached clients and in-process drainer state (tests, endpoint change)."""
    with _client_lock:
        _clients.clear()
    with _status.lock:
        _status.last_error = None
        _status.unreachable = False
        _status.lease_until = 0.0
        _status.lease_next_check = 0.0


def _is_local() -> bool:
    endpoint = get_settings().dynamodb_endpoint or ""
    return endpoint.lower() != "aws"


def create_tables() -> list[str]:
    """Create the missing tables (idempotent). Returns the names created now."""
    client = get_client(tool=True)
    existing: set[str] = set()
    for page in client.get_paginator("list_tables").paginate():
        existing.update(page.get("TableNames", []))
    created: list[str] = []
    for kind, spec in TABLES.items():
        name = table_name(kind)
        if name in existing:
            continue
        try:
            client.create_table(TableName=name, **spec.definition)
            created.append(name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
    for name in created:
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return created


# ---------------------------------------------------------------- writing one row


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def _describe(exc: BaseException) -> str:
    return f"{_error_code(exc)}: {exc}"[:500]


def _write(
    client: Any, kind: str, operation: str, item: dict[str, Any], seq: int, *, allow_equal: bool = False
) -> bool:
    """One conditional write. True when applied, False when DynamoDB already holds a newer version."""
    spec = TABLES[kind]
    condition = f"attribute_not_exists(#k) OR #s {'<=' if allow_equal else '<'} :s"
    common: dict[str, Any] = {
        "TableName": table_name(kind),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {"#k": spec.key_attrs[0], "#s": SEQ_ATTR},
        "ExpressionAttributeValues": {":s": {"N": str(seq)}},
    }
    try:
        if operation == "delete":
            key = {name: _serializer.serialize(item[name]) for name in spec.key_attrs}
            client.delete_item(Key=key, **common)
        else:
            body = {name: _serializer.serialize(value) for name, value in item.items()}
            body[SEQ_ATTR] = {"N": str(seq)}
            client.put_item(Item=body, **common)
    except ClientError as exc:
        if _error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


@dataclass(frozen=True)
class _Row:
    id: int
    entity: str
    key: str
    operation: str
    payload: str
    attempts: int


@dataclass
class DrainStats:
    mirrored: int = 0
    stale: int = 0
    failed: int = 0
    unreachable: bool = False

    @property
    def done(self) -> int:
        return self.mirrored + self.stale


@dataclass
class _Outcome:
    row: _Row
    result: str  # "mirrored" | "stale" | "failed"
    error: str | None = None


def apply_row(client: Any, entity: str, key: str, operation: str, payload: dict[str, Any], seq: int) -> bool:
    """Write one outbox change with its sequence. True if applied, False if DynamoDB had newer."""
    if operation == "delete":
        kind, keys = item_key(entity, key, payload)
        return _write(client, kind, "delete", keys, seq)
    kind, item = build_item(entity, key, payload)
    return _write(client, kind, "upsert", item, seq)


def _apply_group(client: Any, rows: list[_Row], abort: threading.Event) -> list[_Outcome]:
    """Apply one item's rows in order; stop at the first failure so later rows never overtake it."""
    outcomes: list[_Outcome] = []
    for row in rows:
        if abort.is_set():
            break
        try:
            applied = apply_row(client, row.entity, row.key, row.operation, json.loads(row.payload), row.id)
        except (ClientError, BotoCoreError, ValueError, KeyError, TypeError, ArithmeticError) as exc:
            if isinstance(exc, BotoCoreError):
                # Endpoint unreachable: stop the whole batch instead of timing out item by item.
                abort.set()
            outcomes.append(_Outcome(row, "failed", _describe(exc)))
            break
        outcomes.append(_Outcome(row, "mirrored" if applied else "stale"))
    return outcomes


# ---------------------------------------------------------------- the drainer


class _Status:
    """In-process drainer state (times are time.monotonic() readings)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_error: str | None = None
        self.unreachable = False
        self.lease_until = 0.0
        self.lease_next_check = 0.0


_status = _Status()
_drain_lock = threading.Lock()


def _note_result(stats: DrainStats, error: str | None) -> None:
    with _status.lock:
        if error is not None:
            _status.last_error = error
        if stats.unreachable:
            _status.unreachable = True
        elif stats.done:
            _status.unreachable = False


def _hold_lease() -> bool:
    """Take or renew the drainer lease, touching the database only when renewal is due."""
    now = time.monotonic()
    with _status.lock:
        if now < _status.lease_until - LEASE_TTL_SECONDS / 2:
            return True
        if _status.lease_until <= now and now < _status.lease_next_check:
            return False  # another process holds it; look again later
    held = leases.try_acquire(LEASE_NAME, LEASE_TTL_SECONDS)
    with _status.lock:
        if held:
            _status.lease_until = now + LEASE_TTL_SECONDS
        else:
            _status.lease_until = 0.0
            _status.lease_next_check = now + min(LEASE_TTL_SECONDS / 4, 15.0)
    return held


def _release_lease() -> None:
    with _status.lock:
        held = _status.lease_until > time.monotonic()
        _status.lease_until = 0.0
        _status.lease_next_check = 0.0
    if held:
        try:
            leases.release(LEASE_NAME)
        except Exception:  # shutting down: the lease expires by itself
            log.warning("mirror: could not release the drainer lease", exc_info=True)


def _candidates(max_items: int, now: datetime) -> list[_Row]:
    """Undrained rows in id order, skipping rows in back-off and every later row of their items."""
    chosen: list[_Row] = []
    blocked: set[tuple[str, str]] = set()
    last_id = 0
    page = max(max_items, 200)
    with read_session() as session:
        while len(chosen) < max_items:
            rows = session.exec(
                select(Outbox)
                .where(Outbox.processed_at.is_(None), Outbox.id > last_id)  # type: ignore[union-attr,operator]
                .order_by(Outbox.id)  # type: ignore[arg-type]
                .limit(page)
            ).all()
            if not rows:
                break
            for row in rows:
                ident = (row.entity, row.entity_key)
                if ident in blocked:
                    continue
                if row.next_attempt_at is not None and row.next_attempt_at > now:
                    blocked.add(ident)
                    continue
                assert row.id is not None
                chosen.append(_Row(row.id, row.entity, row.entity_key, row.operation, row.payload, row.attempts))
                if len(chosen) >= max_items:
                    break
            last_id = rows[-1].id or last_id
            if len(rows) < page:
                break
    return chosen


def retry_delay(attempts: int) -> float:
    """Exponential back-off with jitter for a row that failed `attempts` times."""
    base = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** min(attempts - 1, 30))
    return base * random.uniform(0.8, 1.2)


def _record(outcomes: list[_Outcome], now: datetime) -> None:
    done = [o.row.id for o in outcomes if o.result != "failed"]
    failed = [o for o in outcomes if o.result == "failed"]
    with write_session() as session:
        for start in range(0, len(done), 500):
            chunk = done[start : start + 500]
            session.exec(update(Outbox).where(Outbox.id.in_(chunk)).values(processed_at=now))  # type: ignore[call-overload,union-attr]
        for outcome in failed:
            attempts = outcome.row.attempts + 1
            session.exec(
                update(Outbox)  # type: ignore[call-overload]
                .where(Outbox.id == outcome.row.id)
                .values(
                    attempts=attempts,
                    last_error=outcome.error,
                    next_attempt_at=now + timedelta(seconds=retry_delay(attempts)),
                )
            )


def _drain(max_items: int) -> DrainStats:
    stats = DrainStats()
    now = datetime.now(timezone.utc)
    rows = _candidates(max_items, now)
    if not rows:
        return stats
    groups: dict[tuple[str, str], list[_Row]] = {}
    for row in rows:
        groups.setdefault((row.entity, row.key), []).append(row)
    client = get_client()
    abort = threading.Event()
    outcomes: list[_Outcome] = []
    if len(groups) == 1:
        outcomes = _apply_group(client, next(iter(groups.values())), abort)
    else:
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(groups)), thread_name_prefix="cnop-mirror") as pool:
            for group_outcomes in pool.map(lambda g: _apply_group(client, g, abort), groups.values()):
                outcomes.extend(group_outcomes)
    _record(outcomes, datetime.now(timezone.utc))
    last_error: str | None = None
    for outcome in outcomes:
        table = ENTITY_TABLE.get(outcome.row.entity, "unknown")
        if outcome.result == "mirrored":
            stats.mirrored += 1
            MIRRORED.labels(table=table).inc()
        elif outcome.result == "stale":
            stats.stale += 1
            STALE.labels(table=table).inc()
        else:
            stats.failed += 1
            FAILED.labels(table=table).inc()
            last_error = outcome.error
    stats.unreachable = abort.is_set()
    if last_error is not None:
        log.warning("mirror: %d row(s) failed, will retry: %s", stats.failed, last_error)
    _note_result(stats, last_error)
    return stats


def drain_batch(max_items: int = BATCH_SIZE) -> DrainStats:
    """One batch by the lease holder; zero stats when off, not the holder, or nothing is due."""
    if not enabled():
        return DrainStats()
    with _drain_lock:
        if not _hold_lease():
            return DrainStats()
        return _drain(max_items)


def drain_once(max_items: int = 500) -> int:
    """Drain up to `max_items` due outbox rows. Returns how many were completed (never raises for DynamoDB)."""
    return drain_batch(max_items).done


def prune(older_than: timedelta = PRUNE_AFTER) -> int:
    """Delete mirrored rows older than `older_than`, always keeping the newest row.

    Keeping the newest row stops SQLite from reusing ids (they are the mirror's sequence numbers).
    """
    cutoff = datetime.now(timezone.utc) - older_than
    with write_session() as session:
        newest = session.exec(select(func.max(Outbox.id))).one()
        if newest is None:
            return 0
        result = session.exec(
            delete(Outbox).where(  # type: ignore[call-overload]
                Outbox.processed_at.is_not(None),  # type: ignore[union-attr]
                Outbox.processed_at < cutoff,  # type: ignore[operator]
                Outbox.id < newest,  # type: ignore[operator]
            )
        )
        return int(result.rowcount or 0)


class _Drainer:
    """The background drainer: a thread, so blocking boto3 and SQL work stays off the event loop."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cnop-mirror-drainer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        outbox.committed.set()
        self.thread.join(30)
        _release_lease()

    def _wait(self, seconds: object, wake_on_commit: bool) -> None:
        if not wake_on_commit:
            self.stop.wait(seconds)
            return
        if outbox.committed.wait(seconds):
            outbox.committed.clear()
            self.stop.wait(COALESCE_SECONDS)

    def _run(self) -> None:
        failures = 0
        tables_ready = not _is_local()
        next_prune = time.monotonic() + 60.0
        while not self.stop.is_set():
            delay, wake = POLL_SECONDS, True
            try:
                if not tables_ready:
                    # A local server may start empty; on AWS the tables are made by `create-tables`.
                    create_tables()
                    tables_ready = True
                stats = drain_batch(BATCH_SIZE)
                if stats.failed and not stats.done:
                    failures += 1
                    delay, wake = min(30.0, RETRY_BASE_SECONDS * 2 ** min(failures, 10)), False
                else:
                    failures = 0
                    if stats.done:
                        delay = 0.0
                if time.monotonic() >= next_prune and _status.lease_until > time.monotonic():
                    next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
                    prune()
            except Exception as exc:  # never let the drainer die: log, back off, try again
                failures += 1
                _note_result(DrainStats(unreachable=isinstance(exc, BotoCoreError)), _describe(exc))
                log.warning("mirror: drainer pass failed: %s", _describe(exc))
                delay, wake = min(30.0, RETRY_BASE_SECONDS * 2 ** min(failures, 10)), False
            if delay:
                self._wait(delay, wake)


@asynccontextmanager
async def mirror_lifespan() -> AsyncIterator[None]:
    """Run the drainer while the app runs (no-op when the mirror is off). Picks up undrained rows at start."""
    if not enabled():
        yield
        return
    drainer = _Drainer()
    drainer.start()
    try:
        yield
    finally:
        await asyncio.to_thread(drainer.close)


# ---------------------------------------------------------------- backfill and verify


def entity_key(entity: str, row: SQLModel) -> str:
    """The outbox key of a SQL row (what services pass to `outbox.emit`)."""
    if entity in ("user", "balance"):
        return row.username  # type: ignore[attr-defined]
    if entity == "ledger":
        return row.transaction_id  # type: ignore[attr-defined]
    if entity == "holding":
        return f"{row.username}#{row.asset_id}"  # type: ignore[attr-defined]
    if entity == "asset_transaction":
        return str(row.id)  # type: ignore[attr-defined]
    if entity == "order":
        return row.order_id  # type: ignore[attr-defined]
    return row.id  # type: ignore[attr-defined]


def _sql_items(session: Session) -> Iterator[tuple[str, dict[str, Any]]]:
    for entity, model in ENTITY_MODEL.items():
        for row in session.exec(select(model).execution_options(yield_per=1000)):
            yield build_item(entity, entity_key(entity, row), outbox.row_payload(row))


def _key_of(kind: str, item: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(item.get(name)) for name in TABLES[kind].key_attrs)


def backfill() -> int:
    """Write every mirrored SQL row to DynamoDB (for turning the mirror on later). Returns items written.

    Items carry the current highest outbox id as their sequence, so outbox rows older than the
    snapshot never overwrite them and newer ones still apply.
    """
    client = get_client(tool=True)
    with read_session() as session:
        if session.get_bind().dialect.name == "postgresql":
            # Wait for in-flight writers and hold new outbox rows back while reading: the snapshot
            # and its sequence number then agree.
            session.exec(text("LOCK TABLE outbox IN SHARE MODE"))  # type: ignore[call-overload]
        seq = int(session.exec(select(func.max(Outbox.id))).one() or 0)
        items = list(_sql_items(session))

    def put(entry: tuple[str, dict[str, Any]]) -> str:
        kind, item = entry
        for attempt in range(1, 9):
            try:
                return "written" if _write(client, kind, "upsert", item, seq, allow_equal=True) else "newer"
            except (ClientError, BotoCoreError) as exc:
                if attempt == 8 or _error_code(exc) not in THROTTLING_CODES | {"InternalServerError"}:
                    return _describe(exc)
                time.sleep(retry_delay(attempt))
        return "unreachable"

    written = 0
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="cnop-backfill") as pool:
        for outcome in pool.map(put, items):
            if outcome == "written":
                written += 1
            elif outcome != "newer":
                errors.append(outcome)
    if errors:
        raise MirrorError(f"backfill: {len(errors)} item(s) failed, first: {errors[0]}")
    return written


@dataclass
class VerifyResult:
    checked: int
    differences: list[str]
    outbox_depth: int = 0

    @property
    def ok(self) -> bool:
        return not self.differences


def _scan(client: Any, kind: str) -> Iterator[dict[str, Any]]:
    paginator = client.get_paginator("scan")
    for page in paginator.paginate(TableName=table_name(kind), ConsistentRead=True):
        for raw in page.get("Items", []):
            yield {name: _deserializer.deserialize(value) for name, value in raw.items()}


def _show(key: tuple[str, ...], kind: str) -> str:
    names = TABLES[kind].key_attrs
    return f"{table_name(kind)} " + " ".join(f"{n}={v}" for n, v in zip(names, key, strict=True))


def verify() -> VerifyResult:
    """Compare SQL and DynamoDB item by item (mirror_seq aside)."""
    client = get_client(tool=True)
    expected: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
    with read_session() as session:
        for kind, item in _sql_items(session):
            expected[(kind, _key_of(kind, item))] = item
        depth = int(session.exec(select(func.count()).where(Outbox.processed_at.is_(None))).one())  # type: ignore[union-attr]
    actual: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
    for kind in TABLES:
        for item in _scan(client, kind):
            item.pop(SEQ_ATTR, None)
            actual[(kind, _key_of(kind, item))] = item
    differences: list[str] = []
    for ident in sorted(set(expected) | set(actual)):
        kind, key = ident
        want, got = expected.get(ident), actual.get(ident)
        if got is None:
            differences.append(f"{_show(key, kind)}: missing in DynamoDB")
            continue
        if want is None:
            differences.append(f"{_show(key, kind)}: only in DynamoDB")
            continue
        for name in sorted(set(want) | set(got)):
            if name not in got:
                differences.append(f"{_show(key, kind)}: {name} sql={want[name]!r} dynamodb=<missing>")
            elif name not in want:
                differences.append(f"{_show(key, kind)}: {name} sql=<missing> dynamodb={got[name]!r}")
            elif want[name] != got[name] or isinstance(want[name], bool) != isinstance(got[name], bool):
                differences.append(f"{_show(key, kind)}: {name} sql={want[name]!r} dynamodb={got[name]!r}")
    return VerifyResult(checked=len(set(expected) | set(actual)), differences=differences, outbox_depth=depth)


# ---------------------------------------------------------------- health and gauges


def _backlog() -> tuple[int, Any, int, str | None]:
    """(depth, oldest undrained age in seconds, rows failing, newest error) from the database."""
    with read_session() as session:
        depth, oldest = session.exec(
            select(func.count(), func.min(Outbox.created_at)).where(Outbox.processed_at.is_(None))  # type: ignore[union-attr]
        ).one()
        failing = session.exec(
            select(func.count()).where(Outbox.processed_at.is_(None), Outbox.attempts > 0)  # type: ignore[union-attr,operator]
        ).one()
        last_error = session.exec(
            select(Outbox.last_error)
            .where(Outbox.processed_at.is_(None), Outbox.last_error.is_not(None))  # type: ignore[union-attr]
            .order_by(Outbox.next_attempt_at.desc())  # type: ignore[union-attr]
            .limit(1)
        ).first()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=timezone.utc)
    age = (datetime.now(timezone.utc) - oldest).total_seconds() if oldest is not None else 0.0
    return int(depth), max(0.0, age), int(failing), last_error


def health_check() -> dict[str, Any]:
    if not enabled():
        return {"status": "ok", "enabled": False}
    depth, age, failing, last_error = _backlog()
    with _status.lock:
        unreachable = _status.unreachable
        last_error = last_error or _status.last_error
    lagging = age > LAG_DEGRADED_SECONDS
    status = "degraded" if lagging or failing or unreachable else "ok"
    return {
        "status": status,
        "enabled": True,
        "outbox_depth": depth,
        "oldest_undrained_age_seconds": round(age, 3),
        "failing_rows": failing,
        "dynamodb_reachable": not unreachable,
        "last_error": last_error,
    }


def _gauge(index: int) -> float:
    if not enabled():
        return 0.0
    try:
        return _backlog()[index]
    except Exception:  # a scrape must not fail because the database is busy
        return math.nan


OUTBOX_DEPTH.set_function(lambda: _gauge(0))
OUTBOX_OLDEST_AGE.set_function(lambda: _gauge(1))
health.register_check("dynamodb_mirror", health_check)
