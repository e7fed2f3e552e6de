"""Idempotency keys: a retried request returns the first result and writes nothing new.

Callers look up and store inside the same write transaction as the change, after taking the
account lock, so two concurrent requests with one key cannot both execute.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlmodel import Session, select

from cnop_app.domain.errors import ValidationFailed
from cnop_app.models import IdempotencyRecord

MAX_KEY_LENGTH = 128


def check_key(key: object) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters", "Idempotency-Key")
    return key.strip()


def request_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def lookup(session: Session, username: str, scope: str, key: str, req_hash: str) -> dict[str, Any] | None:
    row = session.exec(
        select(IdempotencyRecord).where(
            IdempotencyRecord.username == username,
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
        )
    ).first()
    if row is None:
        return None
    if row.request_hash != req_hash:
        raise ValidationFailed("Idempotency-Key was already used with a different request", "Idempotency-Key")
    return json.loads(row.response_body)


def store(session: Session, username: str, scope: str, key: str, req_hash: str, result: dict[str, Any]) -> None:
    session.add(
        IdempotencyRecord(
            username=username,
            scope=scope,
            key=key,
            request_hash=req_hash,
            status_code=201,
            response_body=json.dumps(result, default=str),
        )
    )
