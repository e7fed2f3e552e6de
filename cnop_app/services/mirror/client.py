"""The boto3 DynamoDB client of the mirror and the creation of its tables."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from cnop_app.config import get_settings
from cnop_app.services import outbox
from cnop_app.services.mirror.layout import TABLES, table_name

# Writer threads per batch (drainer and backfill); the client's connection pool is sized for them.
WORKERS = 8

_client_lock = threading.Lock()
_clients: dict[tuple[str, str, bool], Any] = {}


# The drainer's requests, whose parameters it builds already in DynamoDB's wire JSON.
_WIRE_OPERATIONS = frozenset({"BatchGetItem", "BatchWriteItem", "PutItem", "DeleteItem"})


class _WireSerializer:
    """Serialises the drainer's requests with one `json.dumps`.

    Their parameters are strings, numbers and AttributeValue dicts (no blobs, no timestamps), so the
    JSON body is the parameters as they are; botocore's walk over the request shape builds the same
    body at about half of the drainer's CPU. It replaces the client's (private) `_serializer`; without
    that attribute botocore's own serialiser stays.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def serialize_to_request(self, parameters: dict[str, Any], operation_model: Any) -> dict[str, Any]:
        if operation_model.name not in _WIRE_OPERATIONS:
            return self._inner.serialize_to_request(parameters, operation_model)
        request = self._inner.serialize_to_request({}, operation_model)  # method, headers, URL
        request["body"] = json.dumps(parameters, separators=(",", ":")).encode()
        return request


class MirrorDisabled(RuntimeError):
    """CNOP_DYNAMODB_ENDPOINT is not set."""


def enabled() -> bool:
    return outbox.enabled()


def is_local() -> bool:
    """True unless the endpoint is real AWS (a local server may start without tables)."""
    endpoint = get_settings().dynamodb_endpoint or ""
    return endpoint.lower() != "aws"


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
            if not tool and hasattr(client, "_serializer"):
                client._serializer = _WireSerializer(client._serializer)
            _clients[cache_key] = client
        return client


def forget_clients() -> None:
    """Drop the cached clients (the next `get_client` builds a new one)."""
    with _client_lock:
        _clients.clear()


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
