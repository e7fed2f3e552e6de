"""Password hashing: argon2id through passlib, and the dummy hash that equalises login timing.

Every hash and verify takes one of `MAX_CONCURRENT_HASHES` slots: each argon2 run holds 19 MiB, so a
burst of logins (UI or API) queues here instead of growing memory. Callers on an event loop run these
functions in a worker thread (`asyncio.to_thread`): they take ~40 ms of CPU each.
"""

from __future__ import annotations

import threading
import uuid

from passlib.context import CryptContext

# argon2id with OWASP's minimum profile (19 MiB, 2 passes, 1 lane): strong, and ~50 ms rather than
# passlib's default 64 MiB x 3 passes, which made each login cost half a second of CPU.
_pwd = CryptContext(
    schemes=["argon2"],
    deprecated="auto",
    argon2__type="ID",
    argon2__memory_cost=19456,
    argon2__time_cost=2,
    argon2__parallelism=1,
)
MAX_CONCURRENT_HASHES = 4
_hash_slots = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)
_dummy_hash_lock = threading.Lock()
_dummy_hash: str | None = None


def hash_password(password: str) -> str:
    with _hash_slots:
        return _pwd.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    with _hash_slots:
        try:
            return _pwd.verify(password, password_hash)
        except (ValueError, TypeError):
            return False


def dummy_hash() -> str:
    global _dummy_hash
    with _dummy_hash_lock:
        if _dummy_hash is None:
            _dummy_hash = hash_password(uuid.uuid4().hex + "Aa1!")
        return _dummy_hash


def needs_rehash(password_hash: str) -> bool:
    return _pwd.needs_update(password_hash)
