"""The drainer runs in a child process of each app worker, under the worker's lease identity.

Why a process: the drainer's Python work (JSON, item building, boto3 requests) in the worker's own
thread took the GIL from the order path. The child is started and stopped with the app (`make run`
and `deploy/entrypoint.sh serve` both run `mirror_lifespan`), holds the `mirror_drainer` lease with
its parent's holder id (one drainer per deployment, as before: a worker and its child are one
holder), and runs the same `Drainer` with the parent's tunables.

Pipes: the parent writes a line to the child's stdin after its commits that wrote outbox rows (the
child drains at once instead of at its next poll) and closes stdin to stop it; a child whose parent
died sees end of file and stops too. The child writes JSON lines to stdout: after DynamoDB accepted
a batch, the rows to mark done (the parent marks them and acknowledges: on SQLite its writes then
queue with the orders on this process's writer lock), and a report per pass, from which the parent
counts the mirror's metrics and keeps the health check's view of DynamoDB.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cnop_app.config import get_settings
from cnop_app.observability.logging import configure_logging
from cnop_app.observability.multiprocess import ENV as METRICS_DIR_ENV
from cnop_app.services import leases, outbox
from cnop_app.services.mirror import drainer
from cnop_app.services.mirror.client import enabled
from cnop_app.services.mirror.metrics import FAILED, MIRRORED, STALE

log = logging.getLogger(__name__)

_MARK = "cnop-mirror "
_CHILD_MAIN = "import sys; from cnop_app.services.mirror.process import main; raise SystemExit(main(sys.argv[1:]))"
# Wake the child at most this often: a wake per commit under load costs the worker for nothing.
WAKE_EVERY_SECONDS = 0.05
RESTART_AFTER_SECONDS = 2.0
_TUNABLES = (
    "POLL_MS",
    "COALESCE_MS",
    "PASS_MS",
    "BATCH_SIZE",
    "RETRY_BASE_MS",
    "RETRY_MAX_MS",
    "LEASE_TTL_SECONDS",
)
_METRICS = {"mirrored": MIRRORED, "stale": STALE, "failed": FAILED}


def _apply_report(report: dict[str, Any]) -> None:
    """A pass of the child, as the parent's metrics and health state."""
    for key, n in report.get("counts", {}).items():
        result, _, table = key.partition(":")
        metric = _METRICS.get(result)
        if metric is not None:
            metric.labels(table=table).inc(n)
    stats = drainer.DrainStats(mirrored=int(report.get("done", 0)), unreachable=bool(report.get("unreachable")))
    drainer.note_result(stats, report.get("error"))


def _record(request: dict[str, Any]) -> bytes:
    """Mark the rows the child drained, in this process: on SQLite its writes then queue on this
    process's writer lock with the orders instead of meeting SQLite's busy handler (sleeps of up to
    100 ms for the order that meets it, and a drainer starved by back-to-back orders)."""
    try:
        drainer.record(request["done"], request["failed"])
    except Exception:  # the child backs off; its rows are drained again (as stale) later
        log.warning("mirror: could not record the drained rows", exc_info=True)
        return b"nack\n"
    return b"ack\n"


class DrainerProcess:
    """The parent's side: starts the child, forwards commit wake-ups, reads reports, restarts a dead child."""

    def __init__(self, holder: str | None = None) -> None:
        self.stop = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None
        self.write_lock = threading.Lock()  # wake-ups and acknowledgements share the child's stdin
        holder = holder or leases.process_id()
        self.config = {name: getattr(drainer, name) for name in _TUNABLES} | {"holder": holder}
        self.supervisor = threading.Thread(target=self._supervise, name="cnop-mirror-supervisor", daemon=True)

    def _spawn(self) -> None:
        # The child's metrics reach /metrics through this process (its reports), never twice.
        env = {k: v for k, v in os.environ.items() if k != METRICS_DIR_ENV}
        self.child = subprocess.Popen(
            [sys.executable, "-c", _CHILD_MAIN, json.dumps(self.config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        reader = threading.Thread(target=self._read, args=(self.child,), name="cnop-mirror-reports")
        reader.daemon = True
        reader.start()

    def start(self) -> None:
        self._spawn()
        self.supervisor.start()

    def _send(self, child: subprocess.Popen[bytes], line: bytes) -> bool:
        with self.write_lock:
            try:
                assert child.stdin is not None
                child.stdin.write(line)
                child.stdin.flush()
                return True
            except (BrokenPipeError, OSError, ValueError):
                return False  # exited meanwhile: restarted by the supervisor

    def _read(self, child: subprocess.Popen[bytes]) -> None:
        assert child.stdout is not None
        for raw in child.stdout:
            line = raw.decode(errors="replace")
            if not line.startswith(_MARK):
                continue
            try:
                message = json.loads(line[len(_MARK) :])
            except ValueError:
                log.warning("mirror: unreadable message from the drainer process: %r", line[:200])
                continue
            if "record" in message:
                self._send(child, _record(message["record"]))
            else:
                _apply_report(message)

    def _supervise(self) -> None:
        while not self.stop.is_set():
            woken = outbox.committed.wait(drainer.POLL_MS / 1000)
            if self.stop.is_set():
                return
            child = self.child
            if child is None or child.poll() is not None:
                log.warning("mirror: the drainer process exited (%s); starting it again", child and child.returncode)
                if self.stop.wait(RESTART_AFTER_SECONDS):
                    return
                self._spawn()
                continue
            if woken:
                outbox.committed.clear()
                if self._send(child, b"\n"):
                    self.stop.wait(WAKE_EVERY_SECONDS)

    def close(self) -> None:
        self.stop.set()
        outbox.committed.set()
        self.supervisor.join(5)
        child = self.child
        if child is None:
            return
        try:
            with self.write_lock:
                if child.stdin is not None:
                    child.stdin.close()  # the child stops draining, releases the lease and exits
            child.wait(get_settings().shutdown_grace_seconds + 5)
        except subprocess.TimeoutExpired:
            log.warning("mirror: the drainer process did not stop in time; killing it")
            child.kill()
            child.wait(10)
        except OSError:
            pass


@asynccontextmanager
async def mirror_lifespan() -> AsyncIterator[None]:
    """Run the drainer process while the app runs (no-op when the mirror is off). Picks up undrained rows at start."""
    if not enabled():
        yield
        return
    process = DrainerProcess()
    process.start()
    try:
        yield
    finally:
        await asyncio.to_thread(process.close)


_write_lock = threading.Lock()
_acked = threading.Event()
_parent_gone = threading.Event()
_ack_ok = [False]
RECORD_TIMEOUT_SECONDS = 60.0


def _send(message: dict[str, Any]) -> None:
    with _write_lock:
        sys.stdout.write(_MARK + json.dumps(message) + "\n")
        sys.stdout.flush()


def _record_by_parent(done: list[int], failed: list[tuple[int, str | None, list[int]]]) -> None:
    _acked.clear()
    if _parent_gone.is_set():
        raise RuntimeError("the app process stopped: the drained rows are not recorded")
    _send({"record": {"done": done, "failed": failed}})
    if not _acked.wait(RECORD_TIMEOUT_SECONDS) or not _ack_ok[0]:
        # Not marked: the rows come again in the next pass and are found already mirrored (stale).
        raise RuntimeError("the app process did not record the drained rows")


def _terminate(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    """The child: drain until stdin ends (the parent stopped or died)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    logging.basicConfig(level=logging.WARNING)  # the drainer's warnings, on stderr like the app's
    config = json.loads(argv[0])
    for name in _TUNABLES:
        setattr(drainer, name, config[name])
    drainer.set_holder(config["holder"])
    drainer.listener = _send
    drainer.recorder = _record_by_parent
    signal.signal(signal.SIGTERM, _terminate)
    worker = drainer.Drainer()
    worker.start()
    try:
        for line in sys.stdin.buffer:
            if line.startswith((b"ack", b"nack")):
                _ack_ok[0] = line.startswith(b"ack")
                _acked.set()
            else:
                outbox.committed.set()
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group of `make run`
        pass
    finally:
        _parent_gone.set()
        _ack_ok[0] = False
        _acked.set()  # a pass waiting for its acknowledgement gives up now
        worker.close()
    return 0
