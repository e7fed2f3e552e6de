"""The DynamoDB tables of the mirror and the item each outbox entity becomes.

Tables (prefix `CNOP_DYNAMODB_TABLE_PREFIX`):
- `users`: Pk/Sk `<username>`/`USER`, `<username>`/`BALANCE`, `<username>`/`ASSET#<asset_id>`,
  `TRANS#<username>`/`<transaction_id>`, `ASSET_TRANS#<username>#<asset_id>`/`<timestamp>#<id>`;
  GSI `EmailIndex` on `email`.
- `orders`: Pk `<order_id>`, Sk `ORDER`; GSI `UserOrdersIndex` on `username` (range `created_at`).
- `inventory`: hash `product_id` = asset id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date
from sqlmodel import SQLModel

from cnop_app.config import get_settings
from cnop_app.db import ExactDecimal, UTCDateTime
from cnop_app.domain.timeutil import iso, parse_iso
from cnop_app.models import Account, Asset, AssetTransaction, Holding, LedgerEntry, Order, User

# The attribute carrying the outbox row id an item was written from (its version).
SEQ_ATTR = "mirror_seq"


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
    "user": {"id"},
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
    """A time as ISO 8601 in UTC; a value that is not a time fails the row (ValueError)."""
    value = parse_iso(raw if isinstance(raw, datetime) else str(raw))
    if value is None:
        raise ValueError(f"not an ISO 8601 time: {raw!r}")
    return str(iso(value))


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


def table_key(kind: str, item: dict[str, Any]) -> tuple[str, ...]:
    """The key attribute values of an item of table `kind`, in key order."""
    return tuple(str(item.get(name)) for name in TABLES[kind].key_attrs)
