"""Writing one outbox change to DynamoDB: a conditional PutItem or DeleteItem carrying its sequence.

The condition `attribute_not_exists(key) OR mirror_seq < :seq` makes replays and out-of-order
duplicates harmless: a failed condition means "DynamoDB already holds a newer version".
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from cnop_app.services.mirror.layout import SEQ_ATTR, TABLES, build_item, item_key, table_name

THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "Throttling"}
)

_serializer = TypeSerializer()


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
            key = {name: _serializer.serialize(item[name]) for name in spec.key_attrs}
            client.delete_item(Key=key, **common)
        else:
            body = {name: _serializer.serialize(value) for name, value in item.items()}
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
