"""The outbox drainer: one per deployment (lease `mirror_drainer`), a background thread (of the
drainer process beside each app worker: see `process`).

It reads undrained rows in id order and groups them per item; an item's rows are coalesced into its
newest snapshot (the payload is the whole row), so an item is written once per batch. The items go
in batch requests (see `writer`), and the rows are marked done (one statement per 500) once DynamoDB
accepted them; failed rows back off exponentially, and a failed row blocks its item's later rows
until it succeeds. Rows coalesced into a write share its outcome (mirrored or stale). DynamoDB being
down, throttling or a missing table never reaches the callers that write outbox rows: the outbox just
grows and drains later.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import func, update
from sqlmodel import delete, select

from cnop_app.config import get_settings
from cnop_app.db import read_session, write_session
from cnop_app.domain.timeutil import NS_PER_SECOND
from cnop_app.models import Outbox
from cnop_app.services import leases, outbox
from cnop_app.services.mirror.client import create_tables, enabled, forget_clients, get_client, is_local
from cnop_app.services.mirror.layout import ENTITY_TABLE
from cnop_app.services.mirror.metrics import FAILED, MIRRORED, STALE
from cnop_app.services.mirror.writer import (
    GET_BATCH,
    THROTTLING_CODES,
    WRITE_BATCH,
    Change,
    batch_write,
    change,
    describe,
    error_code,
    stored_seqs,
    write_change,
)

log = logging.getLogger(__name__)

LEASE_NAME = "mirror_drainer"
LEASE_TTL_SECONDS = 60
# Durations in integer milliseconds (no binary floats in services/).
POLL_MS = 1000
# After a commit wakes the drainer, wait this long so a burst of writes drains as one batch.
COALESCE_MS = 50
# Under steady load, at most one pass this often (unless the last one was full): each pass costs a
# write transaction and a few requests, and a longer gap coalesces more rows of the same item.
PASS_MS = 500
BATCH_SIZE = 2000
# Batches of at most this many items are written item by item (conditional writes, one request each).
ONE_BY_ONE_MAX = 2
RETRY_BASE_MS = 500
RETRY_MAX_MS = 300_000
# A drainer that keeps failing retries at least this often.
PASS_RETRY_MAX_MS = 30_000
PRUNE_AFTER = timedelta(days=7)
PRUNE_EVERY_MS = 600_000


@dataclass(frozen=True)
class _Row:
    id: int
    entity: str
    key: str
    operation: str
    payload: str
    attempts: int


@dataclass
class DrainStats:
    mirrored: int = 0
    stale: int = 0
    failed: int = 0
    unreachable: bool = False

    @property
    def done(self) -> int:
        return self.mirrored + self.stale


@dataclass
class _Outcome:
    row: _Row
    result: str  # "mirrored" | "stale" | "failed"
    error: str | None = None


@dataclass
class _Item:
    """One DynamoDB item's rows in this batch, coalesced: only the newest snapshot is written."""

    rows: list[_Row]
    change: Change
    result: str | None = None
    error: str | None = None

    def settle(self, result: str, error: str | None = None) -> None:
        self.result, self.error = result, error


_BUILD_ERRORS = (ValueError, KeyError, TypeError, ArithmeticError)


def _change(row: _Row) -> Change:
    return change(row.entity, row.key, row.operation, json.loads(row.payload), row.id)


def _coalesce(rows: list[_Row]) -> tuple[list[_Item], list[_Outcome]]:
    """Group rows per item in id order, each group written as its newest row (the payload is a full
    snapshot). A row that cannot be built fails alone; its item's earlier rows still go, later ones wait."""
    per_item: dict[tuple[str, str], list[_Row]] = {}
    for row in rows:
        per_item.setdefault((row.entity, row.key), []).append(row)
    items: list[_Item] = []
    failed: list[_Outcome] = []
    for group in per_item.values():
        try:
            items.append(_Item(group, _change(group[-1])))
            continue
        except _BUILD_ERRORS:
            pass
        built: Change | None = None
        for index, row in enumerate(group):
            try:
                built = _change(row)
            except _BUILD_ERRORS as exc:
                if built is not None:
                    items.append(_Item(group[:index], built))
                failed.append(_Outcome(row, "failed", describe(exc)))
                break
        else:
            if built is not None:
                items.append(_Item(group, built))
    return items, failed


def _one_by_one(client: Any, items: list[_Item], abort: threading.Event) -> None:
    """Conditional writes, item by item: for small batches and to isolate a batch request's error."""
    for item in items:
        if abort.is_set():
            return
        try:
            item.settle("mirrored" if write_change(client, item.change) else "stale")
        except ClientError as exc:
            item.settle("failed", describe(exc))
        except BotoCoreError as exc:
            # Endpoint unreachable: stop the whole batch instead of timing out item by item.
            item.settle("failed", describe(exc))
            abort.set()


def _throttled(what: str) -> str:
    return f"ProvisionedThroughputExceededException: left unprocessed by {what}"


def _batched(client: Any, kind: str, items: list[_Item], abort: threading.Event) -> None:
    """One table's items: read their stored sequences, then batch-write those DynamoDB has older."""
    due: list[_Item] = []
    for start in range(0, len(items), GET_BATCH):
        chunk = items[start : start + GET_BATCH]
        if abort.is_set():
            return
        try:
            found, unprocessed = stored_seqs(client, kind, [i.change for i in chunk])
        except (ClientError, BotoCoreError) as exc:
            _chunk_failed(client, chunk, exc, abort)
            continue
        for item in chunk:
            if item.change.key in unprocessed:
                item.settle("failed", _throttled("BatchGetItem"))
            elif found.get(item.change.key, -1) >= item.change.seq:
                item.settle("stale")
            else:
                due.append(item)
    for start in range(0, len(due), WRITE_BATCH):
        chunk = due[start : start + WRITE_BATCH]
        if abort.is_set():
            return
        try:
            left = batch_write(client, kind, [i.change for i in chunk])
        except (ClientError, BotoCoreError) as exc:
            _chunk_failed(client, chunk, exc, abort)
            continue
        for item in chunk:
            if item.change.key in left:
                item.settle("failed", _throttled("BatchWriteItem"))
            else:
                item.settle("mirrored")


def _chunk_failed(client: Any, chunk: list[_Item], exc: Exception, abort: threading.Event) -> None:
    if isinstance(exc, BotoCoreError):
        abort.set()
    if isinstance(exc, BotoCoreError) or error_code(exc) in THROTTLING_CODES:
        for item in chunk:
            item.settle("failed", describe(exc))
        return
    _one_by_one(client, chunk, abort)  # e.g. one invalid item fails the whole request: find it


def _apply(client: Any, items: list[_Item]) -> bool:
    """Write the coalesced items; True when DynamoDB was unreachable (the rest of the batch waits)."""
    abort = threading.Event()
    per_table: dict[str, list[_Item]] = {}
    again: list[_Item] = []  # a second item with the same DynamoDB key: a batch takes each key once
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for item in items:
        ident = (item.change.kind, item.change.key)
        if ident in seen:
            again.append(item)
            continue
        seen.add(ident)
        per_table.setdefault(item.change.kind, []).append(item)
    if len(items) <= ONE_BY_ONE_MAX:
        _one_by_one(client, items, abort)  # one request per item is cheaper than read + write
        return abort.is_set()
    for kind, table_items in per_table.items():
        _batched(client, kind, table_items, abort)
    _one_by_one(client, again, abort)
    return abort.is_set()


class _Status:
    """In-process drainer state (times are time.monotonic_ns() readings)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_error: str | None = None
        self.unreachable = False
        self.lease_until = 0
        self.lease_next_check = 0
        self.holder: str | None = None  # the lease holder's id; None: this process's own


_status = _Status()
_drain_lock = threading.Lock()


def reachability() -> tuple[bool, str | None]:
    """(DynamoDB unreachable, last error) as this process's drainer last saw them."""
    with _status.lock:
        return _status.unreachable, _status.last_error


def set_holder(holder: str | None) -> None:
    """Hold the lease as `holder` (the drainer process holds it with its parent's id); None: this process."""
    with _status.lock:
        _status.holder = holder


def reset_client() -> None:
    """Forget cached clients and in-process drainer state (tests, endpoint change)."""
    forget_clients()
    with _status.lock:
        _status.last_error = None
        _status.unreachable = False
        _status.lease_until = 0
        _status.lease_next_check = 0


# Called after each pass with what `note_result` got and the rows per "result:table" (the drainer
# process reports its passes to the app process this way: see `process`).
listener: Callable[[dict[str, Any]], None] | None = None


def note_result(stats: DrainStats, error: str | None, counts: dict[str, int] | None = None) -> None:
    with _status.lock:
        if error is not None:
            _status.last_error = error
        if stats.unreachable:
            _status.unreachable = True
        elif stats.done:
            _status.unreachable = False
    if listener is not None:
        listener({"counts": counts or {}, "unreachable": stats.unreachable, "done": stats.done, "error": error})


def _hold_lease() -> bool:
    """Take or renew the drainer lease, touching the database only when renewal is due."""
    now = time.monotonic_ns()
    ttl = LEASE_TTL_SECONDS * NS_PER_SECOND
    with _status.lock:
        if now < _status.lease_until - ttl // 2:
            return True
        if _status.lease_until <= now and now < _status.lease_next_check:
            return False  # another process holds it; look again later
    held = leases.try_acquire(LEASE_NAME, LEASE_TTL_SECONDS, _status.holder)
    with _status.lock:
        if held:
            _status.lease_until = now + ttl
        else:
            _status.lease_until = 0
            _status.lease_next_check = now + min(ttl // 4, 15 * NS_PER_SECOND)
    return held


def _release_lease() -> None:
    with _status.lock:
        held = _status.lease_until > time.monotonic_ns()
        _status.lease_until = 0
        _status.lease_next_check = 0
    if held:
        try:
            leases.release(LEASE_NAME, _status.holder)
        except Exception:  # shutting down: the lease expires by itself
            log.warning("mirror: could not release the drainer lease", exc_info=True)


def _candidates(max_items: int, now: datetime) -> list[_Row]:
    """Undrained rows in id order, skipping rows in back-off and every later row of their items."""
    chosen: list[_Row] = []
    blocked: set[tuple[str, str]] = set()
    last_id = 0
    page = max(max_items, 200)
    columns = (Outbox.id, Outbox.entity, Outbox.entity_key, Outbox.operation, Outbox.payload, Outbox.attempts)
    with read_session() as session:
        while len(chosen) < max_items:
            rows = session.exec(
                select(*columns, Outbox.next_attempt_at)  # plain tuples: no ORM objects to build
                .where(Outbox.processed_at.is_(None), Outbox.id > last_id)  # type: ignore[union-attr,operator]
                .order_by(Outbox.id)  # type: ignore[arg-type]
                .limit(page)
            ).all()
            if not rows:
                break
            for row_id, entity, key, operation, payload, attempts, next_attempt_at in rows:
                ident = (entity, key)
                if ident in blocked:
                    continue
                if next_attempt_at is not None and next_attempt_at > now:
                    blocked.add(ident)
                    continue
                chosen.append(_Row(row_id, entity, key, operation, payload, attempts))
                if len(chosen) >= max_items:
                    break
            last_id = rows[-1][0]
            if len(rows) < page:
                break
    return chosen


def retry_delay_ms(attempts: int) -> int:
    """Exponential back-off with ±20 % jitter, in milliseconds, for a row that failed `attempts` times."""
    base = min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** min(attempts - 1, 30))
    return base * random.randint(800, 1200) // 1000


def _pass_backoff_ms(failures: int) -> int:
    return min(PASS_RETRY_MAX_MS, RETRY_BASE_MS * 2 ** min(failures, 10))


def record(done: list[int], failed: list[tuple[int, str | None, list[int]]]) -> None:
    """Mark done rows and back off failed ones ((attempts, error, ids)): a few statements in short
    write transactions."""
    now = datetime.now(timezone.utc)
    for start in range(0, len(done), 500):
        # One short transaction per 500 rows: on SQLite the writers (orders) wait for the lock meanwhile.
        with write_session() as session:
            chunk = done[start : start + 500]
            session.exec(update(Outbox).where(Outbox.id.in_(chunk)).values(processed_at=now))  # type: ignore[call-overload,union-attr]
    if not failed:
        return
    with write_session() as session:
        for attempts, error, ids in failed:
            session.exec(
                update(Outbox)  # type: ignore[call-overload]
                .where(Outbox.id.in_(ids))  # type: ignore[union-attr]
                .values(
                    attempts=attempts,
                    last_error=error,
                    next_attempt_at=now + timedelta(milliseconds=retry_delay_ms(attempts)),
                )
            )


# Where a pass's results are written: `record` here; the drainer process has its parent do it.
recorder: Callable[[list[int], list[tuple[int, str | None, list[int]]]], None] = record


def _record(outcomes: list[_Outcome]) -> None:
    done = [o.row.id for o in outcomes if o.result != "failed"]
    failed: dict[tuple[int, str | None], list[int]] = {}
    for outcome in outcomes:
        if outcome.result == "failed":
            failed.setdefault((outcome.row.attempts + 1, outcome.error), []).append(outcome.row.id)
    if done or failed:
        recorder(done, [(attempts, error, ids) for (attempts, error), ids in failed.items()])


def _drain(max_items: int) -> DrainStats:
    stats = DrainStats()
    now = datetime.now(timezone.utc)
    rows = _candidates(max_items, now)
    if not rows:
        return stats
    items, outcomes = _coalesce(rows)
    stats.unreachable = _apply(get_client(), items)
    for item in items:
        if item.result is not None:  # None: not attempted (DynamoDB unreachable), stays due
            outcomes.extend(_Outcome(row, item.result, item.error) for row in item.rows)
    _record(outcomes)
    last_error: str | None = None
    counts: dict[str, int] = {}
    for outcome in outcomes:
        table = ENTITY_TABLE.get(outcome.row.entity, "unknown")
        counts[f"{outcome.result}:{table}"] = counts.get(f"{outcome.result}:{table}", 0) + 1
        if outcome.result == "mirrored":
            stats.mirrored += 1
            MIRRORED.labels(table=table).inc()
        elif outcome.result == "stale":
            stats.stale += 1
            STALE.labels(table=table).inc()
        else:
            stats.failed += 1
            FAILED.labels(table=table).inc()
            last_error = outcome.error
    if last_error is not None:
        log.warning("mirror: %d row(s) failed, will retry: %s", stats.failed, last_error)
    note_result(stats, last_error, counts)
    return stats


def drain_batch(max_items: int = BATCH_SIZE) -> DrainStats:
    """One batch by the lease holder; zero stats when off, not the holder, or nothing is due."""
    if not enabled():
        return DrainStats()
    with _drain_lock:
        if not _hold_lease():
            return DrainStats()
        return _drain(max_items)


def drain_once(max_items: int = 500) -> int:
    """Drain up to `max_items` due outbox rows. Returns how many were completed (never raises for DynamoDB)."""
    return drain_batch(max_items).done


def prune(older_than: timedelta = PRUNE_AFTER) -> int:
    """Delete mirrored rows older than `older_than`, always keeping the newest row.

    Keeping the newest row stops SQLite from reusing ids (they are the mirror's sequence numbers).
    """
    cutoff = datetime.now(timezone.utc) - older_than
    with write_session() as session:
        newest = session.exec(select(func.max(Outbox.id))).one()
        if newest is None:
            return 0
        result = session.exec(
            delete(Outbox).where(  # type: ignore[call-overload]
                Outbox.processed_at.is_not(None),  # type: ignore[union-attr]
                Outbox.processed_at < cutoff,  # type: ignore[operator]
                Outbox.id < newest,  # type: ignore[operator]
            )
        )
        return int(result.rowcount or 0)


class Drainer:
    """The background drainer: a thread, so blocking boto3 and SQL work stays off the event loop."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cnop-mirror-drainer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        outbox.committed.set()
        self.thread.join(get_settings().shutdown_grace_seconds)
        _release_lease()

    def _wait(self, ms: int, wake_on_commit: bool) -> None:
        # threading's timeouts take seconds.
        if not wake_on_commit:
            outbox.committed.clear()  # rows committed meanwhile are picked up by the next pass anyway
            self.stop.wait(ms / 1000)
            return
        if outbox.committed.wait(ms / 1000):
            outbox.committed.clear()
            self.stop.wait(COALESCE_MS / 1000)

    def _run(self) -> None:
        failures = 0
        tables_ready = not is_local()
        next_prune = time.monotonic_ns() + 60 * NS_PER_SECOND
        while not self.stop.is_set():
            delay, wake = POLL_MS, True
            try:
                if not tables_ready:
                    # A local server may start empty; on AWS the tables are made by `create-tables`.
                    create_tables()
                    tables_ready = True
                started = time.monotonic_ns()
                stats = drain_batch(BATCH_SIZE)
                if stats.failed and not stats.done:
                    failures += 1
                    delay, wake = _pass_backoff_ms(failures), False
                else:
                    failures = 0
                    if stats.done + stats.failed >= BATCH_SIZE:
                        delay = 0  # a backlog: keep going
                    elif stats.done:
                        # Rows keep coming: let them gather instead of a pass (and a write lock) per commit.
                        spent_ms = (time.monotonic_ns() - started) // 1_000_000
                        delay, wake = max(0, PASS_MS - spent_ms), False
                if time.monotonic_ns() >= next_prune and _status.lease_until > time.monotonic_ns():
                    next_prune = time.monotonic_ns() + PRUNE_EVERY_MS * 1_000_000
                    prune()
            except Exception as exc:  # never let the drainer die: log, back off, try again
                failures += 1
                note_result(DrainStats(unreachable=isinstance(exc, BotoCoreError)), describe(exc))
                log.warning("mirror: drainer pass failed: %s", describe(exc))
                delay, wake = _pass_backoff_ms(failures), False
            if delay:
                self._wait(delay, wake)
