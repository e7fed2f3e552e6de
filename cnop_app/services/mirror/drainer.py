"""The outbox drainer: one per deployment (lease `mirror_drainer`), in a background thread.

It reads undrained rows in id order, groups them per item, writes the groups in parallel while
keeping each item's rows in order (a failed row blocks the item's later rows until it succeeds),
marks rows done and backs off failed rows exponentially. DynamoDB being down, throttling or a
missing table never reaches the callers that write outbox rows: the outbox just grows and drains later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import func, update
from sqlmodel import delete, select

from cnop_app.config import get_settings
from cnop_app.db import read_session, write_session
from cnop_app.models import Outbox
from cnop_app.services import leases, outbox
from cnop_app.services.mirror.client import WORKERS, create_tables, enabled, forget_clients, get_client, is_local
from cnop_app.services.mirror.layout import ENTITY_TABLE
from cnop_app.services.mirror.metrics import FAILED, MIRRORED, STALE
from cnop_app.services.mirror.writer import apply_row, describe

log = logging.getLogger(__name__)

LEASE_NAME = "mirror_drainer"
LEASE_TTL_SECONDS = 60
POLL_SECONDS = 1.0
# After a commit wakes the drainer, wait this long so a burst of writes drains as one batch.
COALESCE_SECONDS = 0.05
BATCH_SIZE = 500
RETRY_BASE_SECONDS = 0.5
RETRY_MAX_SECONDS = 300.0
PRUNE_AFTER = timedelta(days=7)
PRUNE_EVERY_SECONDS = 600.0


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


def _apply_group(client: Any, rows: list[_Row], abort: threading.Event) -> list[_Outcome]:
    """Apply one item's rows in order; stop at the first failure so later rows never overtake it."""
    outcomes: list[_Outcome] = []
    for row in rows:
        if abort.is_set():
            break
        try:
            applied = apply_row(client, row.entity, row.key, row.operation, json.loads(row.payload), row.id)
        except (ClientError, BotoCoreError, ValueError, KeyError, TypeError, ArithmeticError) as exc:
            if isinstance(exc, BotoCoreError):
                # Endpoint unreachable: stop the whole batch instead of timing out item by item.
                abort.set()
            outcomes.append(_Outcome(row, "failed", describe(exc)))
            break
        outcomes.append(_Outcome(row, "mirrored" if applied else "stale"))
    return outcomes


class _Status:
    """In-process drainer state (times are time.monotonic() readings)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_error: str | None = None
        self.unreachable = False
        self.lease_until = 0.0
        self.lease_next_check = 0.0


_status = _Status()
_drain_lock = threading.Lock()


def reachability() -> tuple[bool, str | None]:
    """(DynamoDB unreachable, last error) as this process's drainer last saw them."""
    with _status.lock:
        return _status.unreachable, _status.last_error


def reset_client() -> None:
    """Forget cached clients and in-process drainer state (tests, endpoint change)."""
    forget_clients()
    with _status.lock:
        _status.last_error = None
        _status.unreachable = False
        _status.lease_until = 0.0
        _status.lease_next_check = 0.0


def _note_result(stats: DrainStats, error: str | None) -> None:
    with _status.lock:
        if error is not None:
            _status.last_error = error
        if stats.unreachable:
            _status.unreachable = True
        elif stats.done:
            _status.unreachable = False


def _hold_lease() -> bool:
    """Take or renew the drainer lease, touching the database only when renewal is due."""
    now = time.monotonic()
    with _status.lock:
        if now < _status.lease_until - LEASE_TTL_SECONDS / 2:
            return True
        if _status.lease_until <= now and now < _status.lease_next_check:
            return False  # another process holds it; look again later
    held = leases.try_acquire(LEASE_NAME, LEASE_TTL_SECONDS)
    with _status.lock:
        if held:
            _status.lease_until = now + LEASE_TTL_SECONDS
        else:
            _status.lease_until = 0.0
            _status.lease_next_check = now + min(LEASE_TTL_SECONDS / 4, 15.0)
    return held


def _release_lease() -> None:
    with _status.lock:
        held = _status.lease_until > time.monotonic()
        _status.lease_until = 0.0
        _status.lease_next_check = 0.0
    if held:
        try:
            leases.release(LEASE_NAME)
        except Exception:  # shutting down: the lease expires by itself
            log.warning("mirror: could not release the drainer lease", exc_info=True)


def _candidates(max_items: int, now: datetime) -> list[_Row]:
    """Undrained rows in id order, skipping rows in back-off and every later row of their items."""
    chosen: list[_Row] = []
    blocked: set[tuple[str, str]] = set()
    last_id = 0
    page = max(max_items, 200)
    with read_session() as session:
        while len(chosen) < max_items:
            rows = session.exec(
                select(Outbox)
                .where(Outbox.processed_at.is_(None), Outbox.id > last_id)  # type: ignore[union-attr,operator]
                .order_by(Outbox.id)  # type: ignore[arg-type]
                .limit(page)
            ).all()
            if not rows:
                break
            for row in rows:
                ident = (row.entity, row.entity_key)
                if ident in blocked:
                    continue
                if row.next_attempt_at is not None and row.next_attempt_at > now:
                    blocked.add(ident)
                    continue
                assert row.id is not None
                chosen.append(_Row(row.id, row.entity, row.entity_key, row.operation, row.payload, row.attempts))
                if len(chosen) >= max_items:
                    break
            last_id = rows[-1].id or last_id
            if len(rows) < page:
                break
    return chosen


def retry_delay(attempts: int) -> float:
    """Exponential back-off with jitter for a row that failed `attempts` times."""
    base = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** min(attempts - 1, 30))
    return base * random.uniform(0.8, 1.2)


def _record(outcomes: list[_Outcome], now: datetime) -> None:
    done = [o.row.id for o in outcomes if o.result != "failed"]
    failed = [o for o in outcomes if o.result == "failed"]
    with write_session() as session:
        for start in range(0, len(done), 500):
            chunk = done[start : start + 500]
            session.exec(update(Outbox).where(Outbox.id.in_(chunk)).values(processed_at=now))  # type: ignore[call-overload,union-attr]
        for outcome in failed:
            attempts = outcome.row.attempts + 1
            session.exec(
                update(Outbox)  # type: ignore[call-overload]
                .where(Outbox.id == outcome.row.id)
                .values(
                    attempts=attempts,
                    last_error=outcome.error,
                    next_attempt_at=now + timedelta(seconds=retry_delay(attempts)),
                )
            )


def _drain(max_items: int) -> DrainStats:
    stats = DrainStats()
    now = datetime.now(timezone.utc)
    rows = _candidates(max_items, now)
    if not rows:
        return stats
    groups: dict[tuple[str, str], list[_Row]] = {}
    for row in rows:
        groups.setdefault((row.entity, row.key), []).append(row)
    client = get_client()
    abort = threading.Event()
    outcomes: list[_Outcome] = []
    if len(groups) == 1:
        outcomes = _apply_group(client, next(iter(groups.values())), abort)
    else:
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(groups)), thread_name_prefix="cnop-mirror") as pool:
            for group_outcomes in pool.map(lambda g: _apply_group(client, g, abort), groups.values()):
                outcomes.extend(group_outcomes)
    _record(outcomes, datetime.now(timezone.utc))
    last_error: str | None = None
    for outcome in outcomes:
        table = ENTITY_TABLE.get(outcome.row.entity, "unknown")
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
    stats.unreachable = abort.is_set()
    if last_error is not None:
        log.warning("mirror: %d row(s) failed, will retry: %s", stats.failed, last_error)
    _note_result(stats, last_error)
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


class _Drainer:
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

    def _wait(self, seconds: object, wake_on_commit: bool) -> None:
        if not wake_on_commit:
            self.stop.wait(seconds)
            return
        if outbox.committed.wait(seconds):
            outbox.committed.clear()
            self.stop.wait(COALESCE_SECONDS)

    def _run(self) -> None:
        failures = 0
        tables_ready = not is_local()
        next_prune = time.monotonic() + 60.0
        while not self.stop.is_set():
            delay, wake = POLL_SECONDS, True
            try:
                if not tables_ready:
                    # A local server may start empty; on AWS the tables are made by `create-tables`.
                    create_tables()
                    tables_ready = True
                stats = drain_batch(BATCH_SIZE)
                if stats.failed and not stats.done:
                    failures += 1
                    delay, wake = min(30.0, RETRY_BASE_SECONDS * 2 ** min(failures, 10)), False
                else:
                    failures = 0
                    if stats.done:
                        delay = 0.0
                if time.monotonic() >= next_prune and _status.lease_until > time.monotonic():
                    next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
                    prune()
            except Exception as exc:  # never let the drainer die: log, back off, try again
                failures += 1
                _note_result(DrainStats(unreachable=isinstance(exc, BotoCoreError)), describe(exc))
                log.warning("mirror: drainer pass failed: %s", describe(exc))
                delay, wake = min(30.0, RETRY_BASE_SECONDS * 2 ** min(failures, 10)), False
            if delay:
                self._wait(delay, wake)


@asynccontextmanager
async def mirror_lifespan() -> AsyncIterator[None]:
    """Run the drainer while the app runs (no-op when the mirror is off). Picks up undrained rows at start."""
    if not enabled():
        yield
        return
    drainer = _Drainer()
    drainer.start()
    try:
        yield
    finally:
        await asyncio.to_thread(drainer.close)
