"""Transactional outbox: change records written in the same SQL transaction as the change.

The DynamoDB mirror (services/mirror/) drains them in commit order. Nothing is written while the
mirror is off (`CNOP_DYNAMODB_ENDPOINT` unset); turning it on later starts with a backfill.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import event, insert
from sqlmodel import Session, SQLModel

from cnop_app.config import get_settings
from cnop_app.hot_query import HotWrite
from cnop_app.models import Outbox

ENTITIES = ("user", "balance", "ledger", "holding", "asset_transaction", "order", "asset")
OPERATIONS = ("upsert", "delete")
_SESSION_FLAG = "cnop_outbox_pending"

# Set after a transaction that wrote outbox rows commits: wakes the in-process drainer at once
# instead of waiting for its next poll (other processes' commits are found by polling).
committed = threading.Event()


def _json_safe(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def _text(payload: dict[str, Any]) -> str:
    """A payload as JSON text, written by orjson: it writes datetimes and dates as `isoformat` does,
    and leaves Decimals to `_json_safe` (their exact text). Four times faster than `json.dumps` over
    `row_payload`, and five payloads are written with every order. Any other type is a TypeError."""
    return orjson.dumps(payload, default=_json_safe).decode()


def payload_text(model: type[SQLModel], values: Mapping[str, Any]) -> str:
    """`values_payload` as JSON text."""
    return _text({name: values.get(name) for name in model.model_fields})


def row_payload_text(row: SQLModel) -> str:
    """`row_payload` as JSON text."""
    return _text({name: getattr(row, name) for name in type(row).model_fields})


def row_payload(row: SQLModel) -> dict[str, Any]:
    """A row as JSON-safe values: Decimal and datetime as exact strings."""
    return {name: _json_safe(getattr(row, name)) for name in type(row).model_fields}


def values_payload(model: type[SQLModel], values: dict[str, Any]) -> dict[str, Any]:
    """The same payload as `row_payload` for a row held as a dict of its columns (the Core write path)."""
    return {name: _json_safe(values.get(name)) for name in model.model_fields}


def enabled() -> bool:
    return bool(get_settings().dynamodb_endpoint)


def emit(session: Session, entity: str, key: str, row: SQLModel | None = None, *, operation: str = "upsert") -> None:
    """Record that `entity` `key` changed. Call after the change, inside its transaction.

    The payload is a snapshot of `row` as it is now, so emit again after a later change in the
    same transaction. For deletes pass the row too: some item keys need more than `key`.
    """
    if entity not in ENTITIES:
        raise ValueError(f"unknown outbox entity {entity!r}")
    if operation not in OPERATIONS:
        raise ValueError(f"unknown outbox operation {operation!r}")
    if not enabled():
        return
    payload = row_payload_text(row) if row is not None else "{}"
    session.add(Outbox(entity=entity, entity_key=key, operation=operation, payload=payload))
    session.info[_SESSION_FLAG] = True


_INSERT = HotWrite(insert(Outbox.__table__))  # type: ignore[attr-defined]


def append(session: Session, records: list[tuple[str, str, type[SQLModel], dict[str, Any]]]) -> None:
    """`emit` for rows written with Core statements: (entity, key, model, column values), one INSERT."""
    if not records or not enabled():
        return
    now = datetime.now(timezone.utc)
    rows = []
    for entity, key, model, values in records:
        if entity not in ENTITIES:
            raise ValueError(f"unknown outbox entity {entity!r}")
        payload = payload_text(model, values)
        rows.append(
            {
                "entity": entity,
                "entity_key": key,
                "operation": "upsert",
                "payload": payload,
                "created_at": now,
                "attempts": 0,
            }
        )
    _INSERT.executemany(session.connection(), rows)
    session.info[_SESSION_FLAG] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_SESSION_FLAG, False):
        committed.set()


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_SESSION_FLAG, None)
