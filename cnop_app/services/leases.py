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

# Unique per process: host, pid and a random suffix (pids repeat across containers).
PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def try_acquire(name: str, ttl_seconds: int, holder: str = PROCESS_ID) -> bool:
    """Take or renew lease `name` for `ttl_seconds`. True when this holder has it now."""
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


def release(name: str, holder: str = PROCESS_ID) -> None:
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
