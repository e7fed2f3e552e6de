"""Identifiers of the rows the order path writes (orders, ledger entries): time-ordered UUIDs.

A version 7 UUID (RFC 9562): the first 48 bits are the Unix time in milliseconds, then the version,
74 random bits and the variant. Written as the same 36-character text as any UUID, so the API and
the stored values keep their form, but ids made later sort later. Why it matters: every index keyed
on these ids (the orders' primary key, the ledger's transaction id and reference, the fills' order
id) then grows at its right edge, where the orders committed together share one page, instead of at
a random page per order. A random (version 4) id dirtied about four more pages per order, each
written to SQLite's log and then to the database file, and read back from disk when it had left the
cache; on PostgreSQL, the same pages go to its WAL, in full after each checkpoint.

Python has `uuid.uuid7` from 3.14 only; this is the RFC's layout with `secrets` for the random bits.
The 74 random bits keep ids unguessable enough for what they are (never a credential: every read
checks the owner), and the time they reveal is the row's own creation time, shown to its owner.
"""

from __future__ import annotations

import secrets
import time
import uuid

_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62
_RAND_A_BITS = 12
_RAND_B_BITS = 62


def uuid7(now_ns: int | None = None) -> uuid.UUID:
    """A new version 7 UUID for the time `now_ns` (nanoseconds since the epoch; default: now)."""
    ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    rand = secrets.randbits(_RAND_A_BITS + _RAND_B_BITS)
    rand_a, rand_b = rand >> _RAND_B_BITS, rand & ((1 << _RAND_B_BITS) - 1)
    return uuid.UUID(int=(ms & ((1 << 48) - 1)) << 80 | _VERSION | rand_a << 64 | _VARIANT | rand_b)


def new_id() -> str:
    """A new time-ordered id as text (the column values of order and ledger ids)."""
    return str(uuid7())
