"""The read path: hot-path read connections (`read_connection`, kept by the event loop's thread), where
reads run (`work_on_the_loop`), and the writes a read path hands on (`deferring_writes`)."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine

from cnop_app.config import get_settings
from cnop_app.db import hot_read_engine, on_dispose

_reading = threading.local()
# The event loop's thread keeps its read connection from request to request (`read_connection(keep=True)`):
# opening and returning a pooled connection was a tenth of a balance request's CPU.
_kept = threading.local()


class _Kept:
    """One thread's kept read connection. Closed when the engines are disposed, or once its thread has
    ended (the thread's locals go, and with them this object)."""

    every: weakref.WeakSet[_Kept] = weakref.WeakSet()

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn = engine.connect()
        self.close = weakref.finalize(self, _close_quietly, self.conn)
        self.close.atexit = False  # at exit the pool is closed anyway
        _Kept.every.add(self)


def _close_quietly(conn: Connection) -> None:
    with contextlib.suppress(Exception):  # its engine was disposed, or its link is gone
        conn.close()


@contextmanager
def read_connection(keep: bool = False) -> Iterator[Connection]:
    """A Core connection for hot-path reads (no ORM session to build and tear down). Nested uses in
    one thread share the outer one: a request's authentication and its reads take one connection
    (and, on SQLite, read one snapshot). Reads only: on PostgreSQL it is in autocommit.

    `keep`: the thread keeps the connection open for its next use (the event loop's one thread on
    SQLite); its transaction still ends here, so every use reads a fresh snapshot and an idle kept
    connection never holds back a WAL checkpoint."""
    outer: Connection | None = getattr(_reading, "conn", None)
    if outer is not None:
        yield outer
        return
    # On PostgreSQL in autocommit: under READ COMMITTED each statement takes its own snapshot anyway,
    # so a transaction around the reads only cost a BEGIN and a ROLLBACK round trip per request.
    engine = hot_read_engine()
    conn = _kept_connection(engine) if keep else engine.connect()
    _reading.conn = conn
    try:
        yield conn
    finally:
        _reading.conn = None
        if not keep:
            conn.close()
        elif conn.invalidated:
            _kept.holder.close()
        elif conn.in_transaction():
            try:
                conn.rollback()
            except Exception:
                _kept.holder.close()
                raise


def _kept_connection(engine: Engine) -> Connection:
    holder: _Kept | None = getattr(_kept, "holder", None)
    if holder is None or holder.engine is not engine or not holder.close.alive or holder.conn.invalidated:
        if holder is not None:
            holder.close()
        holder = _kept.holder = _Kept(engine)
    return holder.conn


def work_on_the_loop() -> bool:
    """Whether the API's hot reads and its group commits run on the event loop instead of the
    database thread: on SQLite, a local file.

    One worker's threads take turns at one interpreter lock, so handing database work to another
    thread freed nothing for the loop. It cost a future and a wake-up of the loop per hop, and the
    database thread gave the lock away at every statement (SQLite releases it while it works) and
    then waited for it, holding the write lock meanwhile: a quarter of a balance request's CPU, a
    third of an order's. A read in WAL mode never waits for the writer; a group commit runs there
    only when the writer is free (`UnitOfWork(wait=False)`). On PostgreSQL every statement waits on
    the network: the work stays on the database threads."""
    return get_settings().is_sqlite


_deferring = threading.local()


@contextmanager
def deferring_writes() -> Iterator[list[Callable[[], None]]]:
    """Collect, instead of running, the writes a read path makes through `write_or_defer` (today only
    the audit row of a revoked token presented again). For reads run on the event loop, which must
    never wait for the SQLite writer lock that a group commit holds: the caller runs the collected
    writes on the database thread before it answers."""
    outer: list[Callable[[], None]] | None = getattr(_deferring, "writes", None)
    writes: list[Callable[[], None]] = []
    _deferring.writes = writes
    try:
        yield writes
    finally:
        _deferring.writes = outer


def write_or_defer(write: Callable[[], None]) -> None:
    """Run `write` now, or hand it to the enclosing `deferring_writes` block."""
    writes: list[Callable[[], None]] | None = getattr(_deferring, "writes", None)
    if writes is None:
        write()
    else:
        # Run later in this context: the audit row names this request and client.
        writes.append(functools.partial(contextvars.copy_context().run, write))


def _close_every_kept() -> None:
    # Kept connections are checked out of the pool, which disposing the engines leaves alone.
    for holder in list(_Kept.every):
        holder.close()


on_dispose(_close_every_kept)
_inherited: list[Connection] = []


def _after_fork_in_child() -> None:
    # The production server forks its workers after importing the app. The parent's kept connections
    # stay referenced, and open, for the parent's sake: this process must not roll them back or close
    # them; it opens its own.
    global _kept
    for holder in list(_Kept.every):
        if holder.close.detach() is not None:
            _inherited.append(holder.conn)
    _kept = threading.local()


os.register_at_fork(after_in_child=_after_fork_in_child)
