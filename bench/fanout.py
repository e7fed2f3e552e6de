"""Live fan-out: N anonymous websocket clients on `/market` (bench/fanout_client.py), prices refreshed
every few seconds, measured from the outside.

- Refresh committed: this process polls the shared market status row (`key_values`, key
  `market:status`) in the app's database every 5 ms; the time its `version` changes is the commit.
- Phase: the clients start connecting right after a refresh was committed.
- Hold: once every client has its first rows, the clients stay until `refreshes` more refreshes were
  committed and every client has received a frame after the last of them (at most a minute more).
- Latency: for each of those commits and each client, from the commit to the first event frame the
  client received after it (if pushes fall behind, that frame may come after the next commit: the
  figure is then how stale the client was). A client that got nothing within that minute counts as
  missed.
- Bytes per client per refresh: the text of every event frame a client received between two commits,
  and the bytes its socket read meanwhile (the same unless permessage-deflate was agreed).
- Memory: RSS of all the server's processes before the clients connect, with every client connected
  (at the end of the hold), and `settle` seconds after they all left.
- First rows: per client, from opening its socket to the first frame carrying market rows.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg

from bench.browser import Handshake
from bench.common import ROOT, Row, cpu_seconds, percentile, rss_kib
from bench.servers import App

ROWS_MARKER = '"rows_rx_state_":[{'
STATUS_SQL = "SELECT value FROM key_values WHERE key = 'market:status'"


class CommitWatch:
    """Polls the market status row; `commits` is [(version, time.time() first seen)]."""

    def __init__(self, database_url: str, every: float = 0.005) -> None:
        self.database_url = database_url
        self.every = every
        self.commits: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="commit-watch", daemon=True)

    def __enter__(self) -> CommitWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _reader(self) -> Any:
        url = self.database_url
        if url.startswith("sqlite:///"):
            return sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True, timeout=5)
        return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True)

    def _run(self) -> None:
        conn = self._reader()
        last = None
        try:
            while not self._stop.wait(self.every):
                row = conn.execute(STATUS_SQL).fetchone()
                current = int(json.loads(row[0]).get("version") or 0) if row else 0
                if current != last:
                    if last is not None:
                        self.commits.append((current, time.time()))
                    last = current
        finally:
            conn.close()

    def between(self, start: float, end: float) -> list[float]:
        return [t for _, t in self.commits if start <= t <= end]

    def wait_commits(self, after: float, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.between(after, float("inf"))) < count and time.monotonic() < deadline:
            time.sleep(0.05)


@dataclass
class FanoutResult:
    clients: int
    connected: int
    errors: list[str]
    latencies: list[float]
    missed: int
    bytes_text: list[int]
    bytes_wire: list[int]
    first_rows: list[float]
    all_rows_after: float  # from the first client's start until the last client had rows
    commits_in_hold: int
    hold_seconds: float
    refresh_gaps: list[float]  # seconds between commits from the first connect to the end of the hold
    rss_before: int
    rss_connected: int
    rss_after: int
    server_cpu_per_refresh: float
    server_cpu: float
    client_cpu: float
    extensions: str
    notes: list[str] = field(default_factory=list)
    slowest: list[float] = field(default_factory=list)  # per measured refresh: its last client's latency

    @property
    def per_client_kib(self) -> float:
        return (self.rss_connected - self.rss_before) / max(1, self.connected)

    def latency_text(self) -> str:
        p50, p99 = percentile(self.latencies, 50), percentile(self.latencies, 99)
        text = f"p50 {p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms"
        if self.missed:
            text += f", {self.missed} of {self.missed + len(self.latencies)} pushes missed"
        return text

    def summary(self) -> str:
        deflate = "permessage-deflate agreed" if "deflate" in self.extensions else "no websocket compression"
        gaps = f"{min(self.refresh_gaps):.1f}–{max(self.refresh_gaps):.1f} s" if self.refresh_gaps else "n/a"
        return (
            f"{self.connected}/{self.clients} clients connected; {self.commits_in_hold} refreshes measured in a "
            f"{self.hold_seconds:.0f} s hold, "
            f"{len(self.latencies)} deliveries, {self.missed} missed; latency {self.latency_text()}, "
            f"max {max(self.latencies, default=float('nan')) * 1000:,.0f} ms; last client per refresh "
            f"{', '.join(f'{s * 1000:,.0f}' for s in self.slowest) or 'n/a'} ms; per client per refresh "
            f"{_kb(statistics.median(self.bytes_text)) if self.bytes_text else 'n/a'} text, "
            f"{_kb(statistics.median(self.bytes_wire)) if self.bytes_wire else 'n/a'} on the wire ({deflate}); "
            f"server CPU per refresh {self.server_cpu_per_refresh:.2f} s; interval between refreshes {gaps}; "
            f"backend RSS {self.rss_before / 1024:.0f} → {self.rss_connected / 1024:.0f} MB connected → "
            f"{self.rss_after / 1024:.0f} MB after they left; client CPU {self.client_cpu:.1f} s vs server "
            f"{self.server_cpu:.1f} s"
        ) + ("; errors: " + "; ".join(self.errors[:3]) if self.errors else "")


def _kb(n: float) -> str:
    return f"{n / 1024:.1f} KB"


def client_config(app: App, handshake: Handshake) -> dict[str, Any]:
    """The browser's websocket URL with this app's host and a placeholder for each client's token."""
    parts = urlsplit(handshake.url)
    query = [(k, "{token}" if k == "token" else v) for k, v in parse_qsl(parts.query)]
    host = app.base.split("//", 1)[1]
    url = f"ws://{host}{parts.path}?{urlencode(query, safe='{}')}"
    return {
        "url": url,
        "origin": app.base,
        "subprotocol": version("reflex"),
        "connect": handshake.connect,
        "rows_marker": ROWS_MARKER,
    }


@contextmanager
def pinned_to(core: int | None) -> Iterator[None]:
    """This process (the commit poller, the samples) on `core` while the block runs."""
    if core is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def run_fanout(
    app: App,
    handshake: Handshake,
    clients: int,
    ramp: float,
    refreshes: int,
    interval: float,
    settle: float,
    client_core: int | None = None,
    extra_server_pids: tuple[int, ...] = (),
) -> FanoutResult:
    """Connect `clients` over `ramp` s, keep them for `refreshes` refreshes, close them, wait `settle` s."""
    with tempfile.TemporaryDirectory(prefix="cnop-fanout-") as tmp:
        cfg = {**client_config(app, handshake), "clients": clients, "ramp": ramp, "connect_timeout": 90}
        cfg["out"] = str(Path(tmp) / "result.json")
        cfg_path = Path(tmp) / "config.json"
        cfg_path.write_text(json.dumps(cfg))
        command = [sys.executable, "-m", "bench.fanout_client", str(cfg_path)]
        if client_core is not None:
            command = ["taskset", "-c", str(client_core), *command]
        with pinned_to(client_core), CommitWatch(app.database_url) as watch:
            server = [*app.pids(), *extra_server_pids]
            # Start right after a refresh: the next one then lands as the last clients connect (the
            # worst phase for a connection storm), and every run has the same phase.
            watch.wait_commits(time.time(), 1, timeout=3 * interval + 5)
            rss_before = rss_kib(app.pids())
            started = time.time()
            proc = subprocess.Popen(
                command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env()
            )
            assert proc.stdout is not None and proc.stdin is not None
            line = proc.stdout.readline()
            if not line.startswith("ALL_ROWS"):
                proc.kill()
                raise RuntimeError(f"fan-out client failed ({proc.wait()}): {line[:300]}")
            all_rows = float(line.split()[1])
            cpu0 = cpu_seconds(server)
            # Refreshes slip when the worker is saturated: wait for them, within reason.
            watch.wait_commits(all_rows, refreshes, timeout=refreshes * interval * 6 + 60)
            measured = watch.between(all_rows, float("inf"))[:refreshes]
            # Until every client has had a frame after the last measured refresh (or a minute).
            proc.stdin.write(f"wait {measured[-1] if measured else time.time()} 60\n")
            proc.stdin.flush()
            proc.stdout.readline()
            hold_end = time.time()
            cpu1 = cpu_seconds(server)
            rss_connected = rss_kib(app.pids())
            proc.stdin.write("close\n")
            proc.stdin.flush()
            if proc.wait(timeout=180):
                raise RuntimeError(f"fan-out client failed with {proc.returncode}")
            time.sleep(settle)
            rss_after = rss_kib(app.pids())
            data = json.loads(Path(cfg["out"]).read_text())
            cycles = len(watch.between(all_rows, hold_end))
            gaps_from = watch.between(started, hold_end)
    result = _analyse(data, measured, gaps_from, rss_before, rss_connected, rss_after, cpu1 - cpu0, clients)
    result.server_cpu_per_refresh = (cpu1 - cpu0) / max(1, cycles)
    result.hold_seconds = hold_end - all_rows
    return result


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _analyse(
    data: dict[str, Any],
    commits: list[float],
    all_commits: list[float],
    rss_before: int,
    rss_connected: int,
    rss_after: int,
    server_cpu: float,
    n: int,
) -> FanoutResult:
    clients = data["clients"]
    ok = [c for c in clients if c["rows_at"] is not None]
    errors = sorted({c["error"] for c in clients if c["error"]})
    latencies: list[float] = []
    slowest = [0.0] * len(commits)
    missed = 0
    bytes_text: list[int] = []
    bytes_wire: list[int] = []
    for c in ok:
        frames = [f for f in c["frames"] if f[0] >= c["rows_at"]]
        for i, start in enumerate(commits):
            after = [f for f in frames if f[0] >= start]
            if not after:
                missed += 1
                continue
            latencies.append(after[0][0] - start)
            slowest[i] = max(slowest[i], after[0][0] - start)
            if i + 1 < len(commits):  # whole refresh cycles only
                inside = [f for f in after if f[0] < commits[i + 1]]
                before = [f[2] for f in frames if f[0] < start]
                bytes_text.append(sum(f[1] for f in inside))
                bytes_wire.append((inside[-1][2] - before[-1]) if inside and before else 0)
    first_rows = [c["rows_at"] - c["started"] for c in ok]
    starts = [c["started"] for c in clients if c["started"]]
    all_after = max(c["rows_at"] for c in ok) - min(starts) if ok and starts else float("nan")
    gaps = [b - a for a, b in zip(all_commits, all_commits[1:], strict=False)]
    return FanoutResult(
        clients=n,
        connected=len(ok),
        errors=errors,
        latencies=latencies,
        missed=missed,
        bytes_text=bytes_text,
        bytes_wire=bytes_wire,
        first_rows=first_rows,
        all_rows_after=all_after,
        commits_in_hold=len(commits),
        hold_seconds=0.0,
        refresh_gaps=gaps,
        rss_before=rss_before,
        rss_connected=rss_connected,
        rss_after=rss_after,
        server_cpu_per_refresh=server_cpu / max(1, len(commits)),
        server_cpu=server_cpu,
        client_cpu=float(data["cpu_seconds"]),
        extensions=next((c["extensions"] for c in clients if c["extensions"]), ""),
        slowest=slowest,
    )


def _share(r: FanoutResult) -> str:
    both = r.client_cpu + r.server_cpu
    return f"{r.client_cpu / both:.0%}" if both > 0 else "n/a"


def latency_row(r: FanoutResult, label: str, target_s: float, target: str) -> Row:
    p99 = percentile(r.latencies, 99)
    complete = r.connected == r.clients and r.missed == 0
    return Row(
        label,
        f"{r.latency_text()} ({r.connected} clients)",
        target,
        p99 <= target_s and complete if r.latencies else False,
        client_share=_share(r),
        notes=[r.summary()],
    )


def bytes_row(r: FanoutResult, moved: str) -> Row:
    text = statistics.median(r.bytes_text) if r.bytes_text else float("nan")
    wire = statistics.median(r.bytes_wire) if r.bytes_wire else float("nan")
    return Row(
        f"bytes per client per refresh, {moved}",
        f"{_kb(wire)} on the wire ({_kb(text)} text)",
        "≤ 5 KB",
        wire <= 5 * 1024 if r.bytes_wire else None,
        notes=[r.summary()],
    )


def memory_row(r: FanoutResult) -> Row:
    per_client = r.per_client_kib
    left = r.rss_after - r.rss_before
    back = left <= max(1024, 0.1 * (r.rss_connected - r.rss_before))
    return Row(
        "memory per open browser (backend RSS growth / clients), after they leave",
        f"{per_client:,.0f} KB per client; {left / 1024:+.0f} MB vs baseline after they left",
        "≤ 100 KB; back to baseline",
        per_client <= 100 and back,
        notes=[
            f"{r.connected} clients: RSS {r.rss_before / 1024:.0f} → {r.rss_connected / 1024:.0f} → "
            f"{r.rss_after / 1024:.0f} MB (before, connected, after they left); 'back' = within 1 MB or 10 % "
            "of the growth"
        ],
    )


def connect_row(r: FanoutResult, ramp: float) -> Row:
    worst = max(r.first_rows, default=float("nan"))
    complete = r.connected == r.clients
    return Row(
        f"{r.clients} browsers connecting within {ramp:.0f} s: all see their first rows",
        f"slowest {worst:.1f} s from its connect, median "
        f"{statistics.median(r.first_rows) if r.first_rows else float('nan'):.1f} s; all had rows "
        f"{r.all_rows_after:.1f} s after the first connected ({r.connected}/{r.clients})",
        "≤ 3 s",
        worst <= 3.0 and complete,
        client_share=_share(r),
        notes=[r.summary()],
    )
