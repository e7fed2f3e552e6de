"""`HotQuery` and `HotWrite`: the hot path's fixed reads and writes, run on the driver's cursor (see
`HotQuery`)."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Insert, Select, Update

from cnop_app.db import is_change_counter, note_change


class _HotStatement:
    """A fixed Core statement compiled once per dialect and set of given columns (`_HotPlan`)."""

    def __init__(self, statement: Select[Any] | Insert | Update) -> None:
        self.statement = statement
        self._plans: dict[tuple[str, tuple[str, ...] | None], _HotPlan] = {}

    def _plan(self, conn: Connection, column_keys: tuple[str, ...] | None = None) -> _HotPlan:
        key = (conn.dialect.name, column_keys)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = _HotPlan(self.statement, conn.dialect, column_keys)
        return plan


class HotQuery(_HotStatement):
    """A fixed Core SELECT of the hot path, run straight on the driver's cursor.

    For a one-row read on SQLite, SQLAlchemy's execution path (execution context, parameter and result
    set-up, events) costs several times the SQL itself: a balance request makes three such reads, and
    they were a quarter of its CPU. This compiles the statement once per dialect, as SQLAlchemy would,
    and runs it with the same bind and result processors of its column types (values come back as
    `conn.execute` returns them: Decimal, aware datetimes), as named tuples.
    Reads only (in `read_connection`, or in a unit of work's transaction: a failed read is counted there
    as `db.note_change` counts any failed statement); no expanding (IN-list) parameters. A driver error is raised as
    SQLAlchemy's (`DBAPIError`), as `conn.execute` would. Where something else listens to the
    connection's statements (a tracer, a test's statement log), the read takes SQLAlchemy's usual path,
    so that it is seen."""

    statement: Select[Any]

    def rows(self, conn: Connection, params: dict[str, Any]) -> list[Any]:
        plan = self._plan(conn)
        if _observed(conn):  # tracing or a statement log must see every statement: the usual path
            return [plan.row(*row) for row in conn.execute(self.statement, params)]
        if not conn.in_transaction():
            conn.begin()  # the reads of one connection share a snapshot (SQLite), as `conn.execute` would
        args = plan.arguments(params)

        def run(cursor: Any) -> tuple[list[Any], list[Any]]:
            cursor.execute(plan.sql, args)
            return cursor.fetchall(), plan.processors(cursor.description)

        fetched, processors = _on_the_driver(conn, plan.sql, args, run)
        return plan.rows(fetched, processors)

    def first(self, conn: Connection, params: dict[str, Any]) -> Any | None:
        found = self.rows(conn, params)
        return found[0] if found else None


class Written(NamedTuple):
    """What a `HotWrite.execute` did: rows matched (`rowcount`); for an INSERT on SQLite, the new row's
    id (`lastrowid`, else None); with RETURNING, its first row (`returned`, values as `HotQuery`'s)."""

    rowcount: int
    lastrowid: int | None
    returned: Any | None = None


class HotWrite(_HotStatement):
    """A fixed Core INSERT or UPDATE of the hot path, run on the driver's cursor: a market order's
    writes (the account, its ledger entries, the holding, the order, the fill) and its outbox rows.
    Through SQLAlchemy's execution path each of them cost several times its SQL on SQLite, inside the
    writer lock. As `conn.execute` does, the statement is compiled for the columns given (the others
    take their database defaults; a column whose default SQLAlchemy fills in from Python, a time or a
    fixed value, must be given: refused at compile time) and values go through their column types'
    bind processors, as with `HotQuery`.
    Run it inside a unit of work, which counts it as changing (`db.note_change`) as SQLAlchemy's
    `before_cursor_execute` hook would; driver errors are raised as SQLAlchemy's. Observed
    connections take SQLAlchemy's usual path, as with `HotQuery`."""

    statement: Insert | Update

    def execute(self, conn: Connection, params: dict[str, Any]) -> Written:
        """One row's values."""
        with_id = isinstance(self.statement, Insert) and conn.dialect.name == "sqlite"
        if _observed(conn):
            result = conn.execute(self.statement, params)
            returned = result.first() if result.returns_rows else None
            return Written(result.rowcount, result.lastrowid if with_id else None, returned)
        plan = self._writing(conn, params)
        args = plan.arguments(params)

        def run(cursor: Any) -> Written:
            cursor.execute(plan.sql, args)
            returned = None
            if plan.columns:
                fetched = cursor.fetchmany(1)
                returned = plan.rows(fetched, plan.processors(cursor.description))[0] if fetched else None
            return Written(cursor.rowcount, cursor.lastrowid if with_id else None, returned)

        return _on_the_driver(conn, plan.sql, args, run)

    def executemany(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Several rows with the same columns in one driver `executemany`, in the order given (an
        INSERT numbers them in that order)."""
        if not rows:
            return
        if _observed(conn):
            conn.execute(self.statement, rows)
            return
        plan = self._writing(conn, rows[0])
        keys = plan.column_keys
        if any(tuple(row) != keys for row in rows):
            raise ValueError("HotWrite.executemany: every row must give the same columns")
        args = [plan.arguments(row) for row in rows]
        _on_the_driver(conn, plan.sql, args, lambda cursor: cursor.executemany(plan.sql, args))

    def _writing(self, conn: Connection, params: dict[str, Any]) -> _HotPlan:
        plan = self._plan(conn, tuple(params))
        if not conn.in_transaction():
            conn.begin()
        note_change(conn)  # as the `before_cursor_execute` hook counts a statement that is not a SELECT
        return plan


def _on_the_driver(conn: Connection, sql: str, args: Any, run: Callable[[Any], Any]) -> Any:
    """`run(cursor)` on a cursor of the connection's driver; a driver error is raised as SQLAlchemy's."""
    dialect = conn.dialect
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        return run(cursor)
    except dialect.loaded_dbapi.Error as exc:
        note_change(conn)  # as the `handle_error` hook counts it
        if dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor):
            conn.invalidate(exc)  # as SQLAlchemy does: the pool replaces a dropped connection
        raise DBAPIError.instance(sql, args, exc, dialect.loaded_dbapi.Error) from exc
    finally:
        cursor.close()


def _observed(conn: Connection) -> bool:
    """Whether anything but `UnitOfWork`'s change counter listens to this connection's statements."""
    if not (conn._has_events or conn.engine._has_events):
        return False
    dispatch = conn.dispatch
    return bool(dispatch.after_cursor_execute) or not all(map(is_change_counter, dispatch.before_cursor_execute))


class _HotPlan:
    def __init__(
        self, statement: Select[Any] | Insert | Update, dialect: Dialect, column_keys: tuple[str, ...] | None = None
    ) -> None:
        # column_keys: a write's given values (an INSERT's other columns take their defaults)
        compiled = statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("HotQuery: expanding (IN-list) parameters are not supported")
        if compiled.insert_prefetch or compiled.update_prefetch:
            # Python-side column defaults: SQLAlchemy's execution context fills them in per execution;
            # this plan would bind NULL instead.
            missing = [column.key for column in (*compiled.insert_prefetch, *compiled.update_prefetch)]
            raise ValueError(f"HotWrite: give the columns that have Python-side defaults: {missing}")
        self.column_keys = column_keys
        self.sql = compiled.string
        escaped = compiled.escaped_bind_names
        names = list(compiled.positiontup or ()) if dialect.positional else list(compiled.binds)
        # (driver's name, our key, value given in the statement, bind processor) per parameter
        self.binds = []
        for name in names:
            bind = compiled.binds[name]
            self.binds.append(
                (
                    escaped.get(name, name),
                    bind.key,
                    None if bind.required else bind.effective_value,
                    bind.type.dialect_impl(dialect).bind_processor(dialect),
                )
            )
        self.positional = dialect.positional
        # A SELECT's columns, or a write's RETURNING. Not `exported_columns` on a write: SQLAlchemy
        # memoizes it, and copies made later (`.values()`, `.returning()`) keep the empty answer.
        selected = list(statement.selected_columns if isinstance(statement, Select) else statement._returning)
        self.columns = [column.type.dialect_impl(dialect) for column in selected]
        self.row = namedtuple("HotRow", [column.key for column in selected])  # type: ignore[misc]
        self.dialect = dialect
        self._processors: list[Any] | None = None

    def arguments(self, params: dict[str, Any]) -> Any:
        values = []
        for _driver_name, key, given, processor in self.binds:
            value = params[key] if key in params else given
            values.append(value if processor is None else processor(value))
        if self.positional:
            return tuple(values)
        return {driver_name: value for (driver_name, *_rest), value in zip(self.binds, values, strict=True)}

    def rows(self, fetched: list[Any], processors: list[Any]) -> list[Any]:
        """The driver's rows as named tuples of the values `conn.execute` would return."""
        make = self.row
        return [
            make(*[value if fn is None else fn(value) for fn, value in zip(processors, raw, strict=True)])
            for raw in fetched
        ]

    def processors(self, description: Any) -> list[Any]:
        if self._processors is None:
            self._processors = [
                impl.result_processor(self.dialect, column[1])
                for impl, column in zip(self.columns, description, strict=True)
            ]
        return self._processors
