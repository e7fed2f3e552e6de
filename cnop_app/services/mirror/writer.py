"""Writing outbox changes to DynamoDB, each item carrying its sequence (`mirror_seq`).

One change: a conditional PutItem or DeleteItem. The condition `attribute_not_exists(key) OR
mirror_seq < :seq` makes replays and out-of-order duplicates harmless: a failed condition means
"DynamoDB already holds a newer version".

Many changes (the drainer): BatchGetItem reads the stored sequences, then BatchWriteItem writes the
items whose stored version is older. A request costs ~10x the client and server CPU of one item in
a batch; BatchWriteItem has no conditions, which is safe because the drainer is the only writer of
outbox changes (its lease) and writes each item's changes in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from cnop_app.services.mirror.layout import SEQ_ATTR, TABLES, build_item, item_key, table_name

THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "Throttling"}
)

_serializer = TypeSerializer()


def _wire(value: Any) -> dict[str, Any]:
    """`TypeSerializer.serialize`, strings done here: they are most of an item's attributes, and its
    type checks ahead of them were half of the drainer's time building a batch."""
    if type(value) is str:
        return {"S": value}
    return _serializer.serialize(value)


# DynamoDB's limits per BatchGetItem and per BatchWriteItem.
GET_BATCH = 100
WRITE_BATCH = 25


def error_code(exc: BaseException) -> str:
    """DynamoDB's error code of a client error, else the exception's type name."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def describe(exc: BaseException) -> str:
    """A short one-line description of a failure, as stored in `outbox.last_error`."""
    return f"{error_code(exc)}: {exc}"[:500]


def write(client: Any, kind: str, operation: str, item: dict[str, Any], seq: int, *, allow_equal: bool = False) -> bool:
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
            key = {name: _wire(item[name]) for name in spec.key_attrs}
            client.delete_item(Key=key, **common)
        else:
            body = {name: _wire(value) for name, value in item.items()}
            body[SEQ_ATTR] = {"N": str(seq)}
            client.put_item(Item=body, **common)
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def apply_row(client: Any, entity: str, key: str, operation: str, payload: dict[str, Any], seq: int) -> bool:
    """Write one outbox change with its sequence. True if applied, False if DynamoDB had newer."""
    if operation == "delete":
        kind, keys = item_key(entity, key, payload)
        return write(client, kind, "delete", keys, seq)
    kind, item = build_item(entity, key, payload)
    return write(client, kind, "upsert", item, seq)


@dataclass
class Change:
    """One item's change ready for a batch: its table, key, sequence and serialised write request."""

    kind: str
    key: tuple[str, ...]
    seq: int
    request: dict[str, Any]


def change(entity: str, key: str, operation: str, payload: dict[str, Any], seq: int) -> Change:
    """The batch write request of one outbox change (raises ValueError/KeyError on a malformed row)."""
    if operation == "delete":
        kind, keys = item_key(entity, key, payload)
        wire = {name: _wire(keys[name]) for name in TABLES[kind].key_attrs}
        request: dict[str, Any] = {"DeleteRequest": {"Key": wire}}
        ident = keys
    else:
        kind, item = build_item(entity, key, payload)
        body = {name: _wire(value) for name, value in item.items()}
        body[SEQ_ATTR] = {"N": str(seq)}
        request = {"PutRequest": {"Item": body}}
        ident = item
    return Change(kind, tuple(str(ident[name]) for name in TABLES[kind].key_attrs), seq, request)


def _wire_key(change: Change) -> dict[str, Any]:
    return {name: {"S": value} for name, value in zip(TABLES[change.kind].key_attrs, change.key, strict=True)}


Key = tuple[str, ...]


def stored_seqs(client: Any, kind: str, changes: list[Change]) -> tuple[dict[Key, int], set[Key]]:
    """({key: stored mirror_seq} of the items that exist, keys DynamoDB left unprocessed) for <= 100 changes.

    Strongly consistent: the drainer's own previous writes are seen.
    """
    names = TABLES[kind].key_attrs
    aliases = {f"#k{i}": name for i, name in enumerate(names)}
    aliases["#s"] = SEQ_ATTR
    response = client.batch_get_item(
        RequestItems={
            table_name(kind): {
                "Keys": [_wire_key(c) for c in changes],
                "ProjectionExpression": ", ".join(aliases),
                "ExpressionAttributeNames": aliases,
                "ConsistentRead": True,
            }
        }
    )
    found: dict[Key, int] = {}
    for item in response.get("Responses", {}).get(table_name(kind), []):
        seq = item.get(SEQ_ATTR, {}).get("N")
        found[tuple(str(item[name]["S"]) for name in names)] = int(seq) if seq is not None else -1
    unprocessed = {
        tuple(str(key[name]["S"]) for name in names)
        for key in response.get("UnprocessedKeys", {}).get(table_name(kind), {}).get("Keys", [])
    }
    return found, unprocessed


def batch_write(client: Any, kind: str, changes: list[Change]) -> set[Key]:
    """Write <= 25 changes of distinct items in one BatchWriteItem. Returns the keys left unprocessed."""
    names = TABLES[kind].key_attrs
    response = client.batch_write_item(RequestItems={table_name(kind): [c.request for c in changes]})
    left: set[Key] = set()
    for request in response.get("UnprocessedItems", {}).get(table_name(kind), []):
        body = request["PutRequest"]["Item"] if "PutRequest" in request else request["DeleteRequest"]["Key"]
        left.add(tuple(str(body[name]["S"]) for name in names))
    return left


def write_change(client: Any, change: Change) -> bool:
    """One change as a conditional write (the one-by-one path). True when applied."""
    spec = TABLES[change.kind]
    common: dict[str, Any] = {
        "TableName": table_name(change.kind),
        "ConditionExpression": "attribute_not_exists(#k) OR #s < :s",
        "ExpressionAttributeNames": {"#k": spec.key_attrs[0], "#s": SEQ_ATTR},
        "ExpressionAttributeValues": {":s": {"N": str(change.seq)}},
    }
    try:
        if "DeleteRequest" in change.request:
            client.delete_item(Key=change.request["DeleteRequest"]["Key"], **common)
        else:
            client.put_item(Item=change.request["PutRequest"]["Item"], **common)
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True
