"""Database engines, exact decimal column type and the transaction helpers.

SQLite runs in WAL mode with a busy timeout. Writes go through a `UnitOfWork` (or `write_session()`), which on SQLite
opens the transaction with BEGIN IMMEDIATE (the database write lock is taken up front, so two
writers serialize instead of failing on lock upgrade) and on PostgreSQL relies on
`SELECT ... FOR UPDATE` of the account row (`lock_account` in services).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric, String, event
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, create_engine

from cnop_app.config import get_settings
from cnop_app.domain.errors import DomainError

SQLITE_BUSY_TIMEOUT_MS = 30_000


class WriterBusy(Exception):
    """`UnitOfWork(wait=False)` found the SQLite writer busy: nothing was done; retry where waiting is fine."""


# Set while `UnitOfWork(wait=False)` opens its transaction: the BEGIN hook then does not wait.
_no_wait = threading.local()


class ExactDecimal(TypeDecorator):
    """Decimal stored without loss: NUMERIC(38, 18) on PostgreSQL, canonical text on SQLite.

    SQLite has no exact numeric type (NUMERIC affinity turns values into floats), so the text form
    keeps every digit; sums are computed in Python with Decimal.
    """

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(38, 18, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            if isinstance(value, float):
                raise TypeError("float is not allowed in a money column; use Decimal")
            value = Decimal(value)
        if not value.is_finite():
            raise ValueError("money and quantities must be finite")
        if dialect.name == "sqlite":
            return format(value, "f")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(DateTime(timezone=dialect.name != "sqlite"))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use datetime.now(timezone.utc)")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _ensure_wal(cursor: sqlite3.Cursor) -> None:
    """Put the database in WAL mode (a setting stored in the file: once set, it stays).

    Switching needs a moment of exclusive access, and SQLite answers "database is locked" at once,
    without waiting, when another process's connection holds the file at that moment: two processes
    opening a new database together (a worker and its mirror drainer, two test processes) met it. So:
    nothing to do when the file is already in WAL mode, else retry within the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


# How many statements a pooled connection ran that may have changed something or failed (anything
# but a SELECT that succeeded). `UnitOfWork` compares it before and after a block run without a
# savepoint, to know whether a refusal left the transaction as it found it.
_CHANGES = "cnop_changes"


def note_change(conn: Connection) -> None:
    """Count a statement of `conn` that may have changed something or failed (see `_CHANGES`)."""
    conn.info[_CHANGES] = conn.info.get(_CHANGES, 0) + 1


def is_change_counter(listener: Any) -> bool:
    """Whether a `before_cursor_execute` listener is the one `_count_changes` registers."""
    return getattr(listener, "_cnop_change_counter", False)


def _count_changes(engine: Engine) -> None:
    # retval=True: registered as is (not wrapped), so `is_change_counter` can tell it from other listeners.
    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _before(conn: Connection, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> tuple[str, Any]:
        if not statement.startswith("SELECT"):
            note_change(conn)
        return statement, parameters

    _before._cnop_change_counter = True  # type: ignore[attr-defined]

    @event.listens_for(engine, "handle_error")
    def _failed(context: Any) -> None:
        # A failed statement aborts a PostgreSQL transaction, even a SELECT.
        if context.connection is not None:
            note_change(context.connection)


def _changes(conn: Connection) -> int:
    return conn.info.get(_CHANGES, 0)


def _make_engine(url: str, immediate: bool) -> Engine:
    engine = _new_engine(url, immediate)
    _count_changes(engine)
    return engine


def _new_engine(url: str, immediate: bool) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=20,
            max_overflow=20,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" hook below choose the BEGIN flavour.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            _ensure_wal(cursor)
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            if not immediate:
                # The reads' BEGIN, once per request: straight to the driver (it changes nothing),
                # not through SQLAlchemy's execution path, a tenth of a hot read's time.
                conn.connection.driver_connection.execute("BEGIN")
                return
            if not getattr(_no_wait, "on", False):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            # Fail at once if another process holds the write lock (the event loop must not sleep in
            # SQLite's busy handler); the pragmas go straight to the driver, they change no data.
            driver = conn.connection.driver_connection
            driver.execute("PRAGMA busy_timeout=0")
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            finally:
                driver.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=20)


class _Engines:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._url: str | None = None
        self.read: Engine | None = None
        self.write: Engine | None = None
        self.hot_read: Engine | None = None

    def get(self) -> tuple[Engine, Engine, Engine]:
        url = get_settings().database_url
        with self._lock:
            if self._url != url or self.read is None or self.write is None or self.hot_read is None:
                self.dispose_locked()
                self.write = _make_engine(url, immediate=True)
                if url.startswith("sqlite"):
                    # Reads only: no count of changed statements (`UnitOfWork` writes through
                    # `self.write`), so its statements skip SQLAlchemy's per-statement events.
                    self.read = self.hot_read = _new_engine(url, immediate=False)
                else:
                    # PostgreSQL needs no second engine: row locks come from FOR UPDATE. Hot reads
                    # run in autocommit on the same pool (see `read_path.read_connection`).
                    self.read = self.write
                    self.hot_read = self.write.execution_options(isolation_level="AUTOCOMMIT")
                self._url = url
            return self.read, self.write, self.hot_read

    def dispose_locked(self) -> None:
        for hook in _on_dispose:  # connections held outside the pools, which `dispose` leaves alone
            hook()
        for engine in {self.read, self.write}:
            if engine is not None:
                engine.dispose()
        self.read = self.write = self.hot_read = None
        self._url = None


_engines = _Engines()


def read_engine() -> Engine:
    return _engines.get()[0]


def write_engine() -> Engine:
    return _engines.get()[1]


def hot_read_engine() -> Engine:
    """The engine of `read_path.read_connection` (on PostgreSQL the write engine's pool, in autocommit)."""
    return _engines.get()[2]


_on_dispose: list[Callable[[], None]] = []


def on_dispose(hook: Callable[[], None]) -> None:
    """Run `hook` whenever the engines are disposed: for connections kept out of the pool."""
    _on_dispose.append(hook)


def dispose_engines() -> None:
    """Close every pooled connection (tests, shutdown, switching databases)."""
    with _engines._lock:
        _engines.dispose_locked()


@contextmanager
def read_session() -> Iterator[Session]:
    """A session for reads: consistent snapshot, never takes the write lock."""
    with Session(read_engine(), expire_on_commit=False) as session:
        yield session


# SQLite allows one writer at a time. Threads of this process queue on this lock instead of
# SQLite's busy handler, which sleeps in growing steps (up to 100 ms) and made the latency tail
# seconds long under contention. Other processes still meet the busy timeout. Re-entrant, so a
# nested write in the same thread fails on SQLite's lock rather than deadlocking here.
_sqlite_writer = threading.RLock()


def _after_fork_in_child() -> None:
    # Reflex's production server imports the app and then FORKS its workers: pooled connections and
    # a lock possibly held by another thread of the parent must not be shared with a child.
    # `close=False` leaves the parent's connections alone.
    global _sqlite_writer
    for engine in {_engines.read, _engines.write}:
        if engine is not None:
            engine.dispose(close=False)
    _engines.read = _engines.write = _engines.hot_read = None
    _engines._url = None
    _engines._lock = threading.Lock()
    _sqlite_writer = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)


# The API's hot routes hand their whole unit of work (authentication, reads, the write) to this
# executor in one hop. On SQLite it is ONE thread: there is one writer anyway, and writers spread
# over many pool threads convoyed on the writer lock, each waiting for the GIL after every statement
# while holding the lock. PostgreSQL writers lock rows, not the database: a few threads.
SQLITE_DB_THREADS = 1
SERVER_DB_THREADS = 8
_db_executor: ThreadPoolExecutor | None = None
_db_executor_lock = threading.Lock()


def db_executor() -> ThreadPoolExecutor:
    global _db_executor
    with _db_executor_lock:
        if _db_executor is None:
            sqlite = get_settings().database_url.startswith("sqlite")
            _db_executor = ThreadPoolExecutor(
                max_workers=SQLITE_DB_THREADS if sqlite else SERVER_DB_THREADS, thread_name_prefix="cnop-db"
            )
        return _db_executor


def _fresh_executor_in_child() -> None:
    # A forked worker has none of the parent's threads: it starts its own executor on first use.
    global _db_executor, _db_executor_lock
    _db_executor = None
    _db_executor_lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_executor_in_child)


class UnitOfWork:
    """One atomic write transaction that rolls back unless `commit()` is called.

    Write services take an optional `uow`: given one, they write into it and leave the commit to the
    caller, so several services can share one transaction (register then log in); without one they
    open their own (`write_session`). `on_commit` callbacks (metrics) run only once the data is durable.
    On SQLite the process writer lock is held for the whole unit (BEGIN IMMEDIATE takes the database
    lock up front); on PostgreSQL row locks come from `SELECT ... FOR UPDATE`.
    """

    def __init__(self, engine: Engine | None = None, *, wait: bool = True) -> None:
        self._engine = engine
        # False (the event loop's group commit): on SQLite, take the process writer lock and the
        # database's write lock now, or raise `WriterBusy` at once instead of waiting for them.
        self._wait = wait
        self._lock: Any = None
        self._session: Session | None = None
        self._after_commit: list[Callable[[], None]] = []
        # Group commit's first pass: savepoints are not taken (see `savepoint`); `tainted` once a
        # block failed after changing something, and the batch must be redone with them.
        self.optimistic = False
        self.tainted = False

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is not open: use it in a `with` block")
        return self._session

    def __enter__(self) -> UnitOfWork:
        engine = self._engine or write_engine()
        sqlite = engine.dialect.name == "sqlite"
        self._lock = _sqlite_writer if sqlite else contextlib.nullcontext()
        if sqlite and not self._wait:
            if not _sqlite_writer.acquire(blocking=False):
                raise WriterBusy("another thread of this process is writing")
        else:
            self._lock.__enter__()
        try:
            self._session = Session(engine, expire_on_commit=False)
            if sqlite and not self._wait:
                self._begin_without_waiting(self._session)
        except BaseException:
            if self._session is not None:
                self._session.close()
                self._session = None
            self._lock.__exit__(None, None, None)
            raise
        return self

    @staticmethod
    def _begin_without_waiting(session: Session) -> None:
        _no_wait.on = True
        try:
            session.connection()  # BEGIN IMMEDIATE, with no busy timeout (see `_new_engine`)
        except OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise WriterBusy("another process is writing") from exc
            raise
        finally:
            _no_wait.on = False

    def __exit__(self, *exc: object) -> None:
        try:
            if self._session is not None:
                self._session.rollback()  # no-op after commit(); discards anything uncommitted
                self._session.close()
        finally:
            self._session = None
            self._after_commit.clear()
            self._lock.__exit__(None, None, None)

    def commit(self) -> None:
        self.session.commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def rollback(self) -> None:
        self.session.rollback()
        self._after_commit.clear()

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` after the next successful commit (dropped on rollback)."""
        self._after_commit.append(callback)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested unit: an error inside undoes only what was written inside (and its `on_commit`
        callbacks); the rest of the unit stands.

        When `optimistic`, no SAVEPOINT is taken (two round trips per service call on PostgreSQL, a
        fifth of an order's). Services check before they write, so a refusal (a `DomainError`) normally
        leaves the transaction untouched; if the block ran any statement other than a successful
        SELECT, or left ORM changes pending, or failed any other way, the unit is marked `tainted`
        and its owner (`run_batch`) rolls it back and redoes the work with real savepoints."""
        callbacks = len(self._after_commit)
        if self.optimistic:
            session = self.session
            conn = session.connection()
            before = _changes(conn)
            try:
                yield
            except BaseException as exc:
                del self._after_commit[callbacks:]
                pending = bool(session.new or session.dirty or session.deleted)
                if not isinstance(exc, DomainError) or pending or _changes(conn) != before:
                    self.tainted = True
                raise
            return
        try:
            with self.session.begin_nested():
                yield
        except BaseException:
            del self._after_commit[callbacks:]
            raise


def run_batch(works: Sequence[Callable[[UnitOfWork], Any]], *, wait: bool = True) -> list[tuple[bool, Any]]:
    """Group commit: run `works` in ONE transaction and commit once.

    Each work writes through the services (`unit_of_work(uow)` / `write_session(uow)`), each service
    call a nested unit (`UnitOfWork.savepoint`): a work that raises changes nothing and the others are
    not affected. Returns (True, result) or (False, exception) per work, in order. If the commit
    fails, every work gets that error (nothing was written). One BEGIN/COMMIT (and one hop to the
    database thread) for a whole batch instead of one per request: how ledgers and PostgreSQL itself
    amortise commits.

    The batch first runs without savepoints (`optimistic`). If a work fails after changing something
    (`tainted`: a constraint violated mid-write, a database error), the whole transaction is rolled
    back and every work that had not been refused cleanly runs again, this time each in a real
    savepoint. A clean refusal stands: it changed nothing, and its error (and the metrics it counted)
    are not repeated.

    `wait=False`: raise `WriterBusy`, having run nothing, if the SQLite writer is busy."""
    outcomes: list[tuple[bool, Any]] = []
    try:
        with UnitOfWork(wait=wait) as uow:
            uow.optimistic = True
            for work in works:
                outcomes.append(_run_one(work, uow))
                if uow.tainted:
                    break
            if uow.tainted:
                uow.rollback()
                uow.optimistic = uow.tainted = False
                refused = {i for i, (ok, _) in enumerate(outcomes[:-1]) if not ok}
                outcomes = [outcomes[i] if i in refused else _run_one(work, uow) for i, work in enumerate(works)]
            uow.commit()
    except WriterBusy:
        raise
    except Exception as exc:
        return [(False, exc)] * len(works)
    return outcomes


def _run_one(work: Callable[[UnitOfWork], Any], uow: UnitOfWork) -> tuple[bool, Any]:
    try:
        result = work(uow)
    except Exception as exc:
        return False, exc
    if uow.optimistic:
        # Its ORM changes are written now, as a savepoint's release would: a failure is this work's
        # (and taints the batch), not the next work's or the commit's.
        try:
            uow.session.flush()
        except Exception as exc:
            uow.tainted = True
            return False, exc
    return True, result


@contextmanager
def write_session(uow: UnitOfWork | None = None) -> Iterator[Session]:
    """The session of the caller's unit of work (the caller commits), or of a new one that commits
    here when the block succeeds and rolls back everything on any error."""
    if uow is not None:
        with uow.savepoint():  # an error undoes this service's writes, not the caller's
            yield uow.session
        return
    with UnitOfWork() as own:
        yield own.session
        own.commit()


@contextmanager
def unit_of_work(uow: UnitOfWork | None = None) -> Iterator[UnitOfWork]:
    """Like `write_session` but yields the unit of work itself (for `on_commit`)."""
    if uow is not None:
        with uow.savepoint():  # an error undoes this service's writes, not the caller's
            yield uow
        return
    with UnitOfWork() as own:
        yield own
        own.commit()


def null_pool_engine(url: str) -> Engine:
    """A poolless engine for one-off tools (migrations)."""
    return create_engine(url, poolclass=NullPool)
