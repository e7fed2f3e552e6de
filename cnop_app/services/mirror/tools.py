"""Operator tools: backfill (mirror what SQL already holds) and verify (compare SQL and DynamoDB)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import func, text
from sqlmodel import Session, select

from cnop_app.db import read_session
from cnop_app.models import Outbox
from cnop_app.services import outbox
from cnop_app.services.mirror.client import WORKERS, get_client
from cnop_app.services.mirror.drainer import retry_delay_ms
from cnop_app.services.mirror.layout import (
    ENTITY_MODEL,
    SEQ_ATTR,
    TABLES,
    build_item,
    entity_key,
    table_key,
    table_name,
)
from cnop_app.services.mirror.writer import THROTTLING_CODES, describe, error_code, write

_deserializer = TypeDeserializer()


class MirrorError(RuntimeError):
    """A mirror tool (backfill) could not finish."""


def _sql_items(session: Session) -> Iterator[tuple[str, dict[str, Any]]]:
    for entity, model in ENTITY_MODEL.items():
        for row in session.exec(select(model).execution_options(yield_per=1000)):
            yield build_item(entity, entity_key(entity, row), outbox.row_payload(row))


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
                return "written" if write(client, kind, "upsert", item, seq, allow_equal=True) else "newer"
            except (ClientError, BotoCoreError) as exc:
                if attempt == 8 or error_code(exc) not in THROTTLING_CODES | {"InternalServerError"}:
                    return describe(exc)
                time.sleep(retry_delay_ms(attempt) / 1000)
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


# `verify` reads SQL, then scans DynamoDB: a write committed and drained in between looks like a
# difference while it is not one (a live deployment refreshes prices every few seconds). Items that
# differ are read again, SQL first and then the item itself, after a pause; only those that still
# differ in every round are reported.
RECHECK_ROUNDS = 4
RECHECK_PAUSE_SECONDS = 1

_Ident = tuple[str, tuple[str, ...]]


def _sql_snapshot() -> tuple[dict[_Ident, dict[str, Any]], int]:
    """Every mirrored SQL row as its DynamoDB item, and the outbox depth."""
    expected: dict[_Ident, dict[str, Any]] = {}
    with read_session() as session:
        for kind, item in _sql_items(session):
            expected[(kind, table_key(kind, item))] = item
        depth = int(session.exec(select(func.count()).where(Outbox.processed_at.is_(None))).one())  # type: ignore[union-attr]
    return expected, depth


def _get(client: Any, ident: _Ident) -> dict[str, Any] | None:
    kind, key = ident
    names = TABLES[kind].key_attrs
    raw = client.get_item(
        TableName=table_name(kind),
        Key={name: {"S": value} for name, value in zip(names, key, strict=True)},
        ConsistentRead=True,
    ).get("Item")
    if raw is None:
        return None
    item = {name: _deserializer.deserialize(value) for name, value in raw.items()}
    item.pop(SEQ_ATTR, None)
    return item


def _differences(ident: _Ident, want: dict[str, Any] | None, got: dict[str, Any] | None) -> list[str]:
    kind, key = ident
    if got is None:
        return [f"{_show(key, kind)}: missing in DynamoDB"]
    if want is None:
        return [f"{_show(key, kind)}: only in DynamoDB"]
    found: list[str] = []
    for name in sorted(set(want) | set(got)):
        if name not in got:
            found.append(f"{_show(key, kind)}: {name} sql={want[name]!r} dynamodb=<missing>")
        elif name not in want:
            found.append(f"{_show(key, kind)}: {name} sql=<missing> dynamodb={got[name]!r}")
        elif want[name] != got[name] or isinstance(want[name], bool) != isinstance(got[name], bool):
            found.append(f"{_show(key, kind)}: {name} sql={want[name]!r} dynamodb={got[name]!r}")
    return found


def verify() -> VerifyResult:
    """Compare SQL and DynamoDB item by item (mirror_seq aside); differences must persist to count."""
    client = get_client(tool=True)
    expected, depth = _sql_snapshot()
    actual: dict[_Ident, dict[str, Any]] = {}
    for kind in TABLES:
        for item in _scan(client, kind):
            item.pop(SEQ_ATTR, None)
            actual[(kind, table_key(kind, item))] = item
    checked = len(set(expected) | set(actual))
    differing: dict[_Ident, list[str]] = {}
    for ident in sorted(set(expected) | set(actual)):
        if found := _differences(ident, expected.get(ident), actual.get(ident)):
            differing[ident] = found
    for _ in range(RECHECK_ROUNDS):
        if not differing:
            break
        time.sleep(RECHECK_PAUSE_SECONDS)
        expected, depth = _sql_snapshot()
        still: dict[_Ident, list[str]] = {}
        for ident in differing:
            if found := _differences(ident, expected.get(ident), _get(client, ident)):
                still[ident] = found
        differing = still
    differences = [line for ident in sorted(differing) for line in differing[ident]]
    return VerifyResult(checked=checked, differences=differences, outbox_depth=depth)
