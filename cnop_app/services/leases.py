"""Named leases in the database: exactly one holder per deployment for singleton jobs.

Works across worker processes and pods that share the database. A holder renews its lease on
every run; another process takes over once the lease has expired.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from cnop_app.db import write_session
from cnop_app.models import Lease

_process_id: tuple[int, str] | None = None


def process_id() -> str:
    """Unique per process: host, pid and a random suffix (pids repeat across containers).

    Computed in the process that asks, never at import: Reflex's production server imports the app
    once and then FORKS its workers, so an id made at import time was shared by every worker of an
    instance, and each of them believed it held the lease (several refreshes per interval)."""
    global _process_id
    pid = os.getpid()
    if _process_id is None or _process_id[0] != pid:
        _process_id = (pid, f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}")
    return _process_id[1]


def try_acquire(name: str, ttl_seconds: int, holder: str | None = None) -> bool:
    """Take or renew lease `name` for `ttl_seconds`. True when this holder (this process) has it now."""
    holder = holder or process_id()
    now = datetime.now(timezone.utc)
    expires = now + timedelta(seconds=ttl_seconds)
    try:
        with write_session() as session:
            lease = session.exec(select(Lease).where(Lease.name == name).with_for_update()).first()
            if lease is None:
                session.add(Lease(name=name, holder=holder, expires_at=expires, acquired_at=now))
                return True
            if lease.holder != holder and lease.expires_at > now:
                return False
            if lease.holder != holder:
                lease.acquired_at = now
            lease.holder = holder
            lease.expires_at = expires
            session.add(lease)
            return True
    except IntegrityError:
        # Another process inserted the row first.
        return False


def release(name: str, holder: str | None = None) -> None:
    holder = holder or process_id()
    with write_session() as session:
        lease = session.exec(select(Lease).where(Lease.name == name).with_for_update()).first()
        if lease is not None and lease.holder == holder:
            session.delete(lease)


def current_holder(name: str) -> str | None:
    now = datetime.now(timezone.utc)
    with write_session() as session:
        lease = session.get(Lease, name)
        if lease is None or lease.expires_at <= now:
            return None
        return lease.holder
