"""What every bench shares: the result row and table, process CPU and memory from /proc, users, ports."""

from __future__ import annotations

import os
import socket
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PASSWORD = "Bench-Password-42!"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
# Capacity is measured, not the limiter: one load generator on one IP would hit the per-IP limits.
NO_RATE_LIMIT = {"CNOP_RATE_LIMIT_ENABLED": "false"}


@dataclass
class Row:
    """One line of the table. `passed` None: no target (informational) or not measured."""

    workload: str
    figure: str
    target: str = ""
    passed: bool | None = None
    ratio: str = ""
    client_share: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "-" if self.target else ""
        return "pass" if self.passed else "FAIL"


COLUMNS = ("workload", "figure", "target", "pass/fail", "ratio to floor", "client CPU share")


def table(rows: Sequence[Row]) -> str:
    """The result table (Markdown, so it pastes into docs/performance.md as is), then each row's notes."""
    cells = [[r.workload, r.figure, r.target, r.verdict, r.ratio, r.client_share] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(COLUMNS)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(COLUMNS, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for c in cells:
        lines.append("| " + " | ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)) + " |")
    notes = [f"- {r.workload}: {n}" for r in rows for n in r.notes]
    return "\n".join(lines + ([""] + notes if notes else []))


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))
    return ordered[rank]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- /proc


def _stat_fields(pid: int, tid: int | None = None) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    return text[text.rindex(")") + 2 :].split()


def thread_cpu_seconds(pids: Iterable[int]) -> dict[tuple[int, int], tuple[str, float]]:
    """User + system CPU seconds so far of every thread of these processes: (pid, tid) -> (name, s)."""
    found = {}
    for pid in pids:
        try:
            tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
        except OSError:
            continue
        for tid in tids:
            fields = _stat_fields(pid, tid)
            try:
                name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            except OSError:
                continue
            if fields:
                found[(pid, tid)] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds used so far by these (live) processes."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def group_pids(pgid: int) -> list[int]:
    """Live processes of a process group (a server started with start_new_session)."""
    found = []
    for pid in all_pids():
        fields = _stat_fields(pid)
        if fields and int(fields[2]) == pgid and fields[0] != "Z":
            found.append(pid)
    return found


def descendants(root: int) -> list[int]:
    """`root` and every live process below it."""
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        fields = _stat_fields(pid)
        if fields and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def pgid_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[2]) if fields else None


def rss_kib(pids: Iterable[int]) -> int:
    """Resident set size of these processes, KiB (from /proc/<pid>/statm)."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB
        except (OSError, IndexError, ValueError):
            continue
    return total


def listening_pids(port: int) -> list[int]:
    """Processes holding a listening TCP socket on `port` (loopback servers started by the bench)."""
    inodes = set()
    for table_path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table_path).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{parts[9]}]")
    pids = []
    for pid in all_pids():
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in inodes:
                    pids.append(pid)
                    break
            except OSError:
                continue
    return sorted(pids)


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine so far, from one read of /proc/stat.
    Stolen: what the hypervisor gave to other guests ("steal"), time this machine's processes were
    ready to run and could not (counted as busy too)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK, values[7] / CLK_TCK


class CpuWindow:
    """CPU used by the server processes, and by the whole machine, between start() and stop()."""

    def __init__(self, server_pids: Sequence[int]) -> None:
        self.server_pids = list(server_pids)
        self.server = 0.0
        self.machine = 0.0
        self.stolen = 0.0
        self.wall = 0.0
        self.threads: dict[tuple[int, int], tuple[str, float]] = {}

    def __enter__(self) -> CpuWindow:
        self._threads0 = thread_cpu_seconds(self.server_pids)
        self._server0 = cpu_seconds(self.server_pids)
        self._busy0, self._stolen0 = machine_busy_seconds()
        self._t0 = time.monotonic()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server = cpu_seconds(self.server_pids) - self._server0
        busy, stolen = machine_busy_seconds()
        self.machine = busy - self._busy0
        self.stolen = stolen - self._stolen0
        self.wall = time.monotonic() - self._t0
        after = thread_cpu_seconds(self.server_pids)
        self.threads = {
            key: (name, used - self._threads0.get(key, (name, 0.0))[1]) for key, (name, used) in after.items()
        }

    def threads_note(self, requests: int) -> str:
        """Where the busiest server process spent its CPU, per request: its main thread (the event loop
        of a worker), its other threads by name, busiest first; and how idle the machine was. One worker
        process serves a request on two threads that take turns at one interpreter lock, so a figure
        limited by that shows here as a busy main thread with idle cores beside it."""
        if requests <= 0 or not self.threads:
            return ""
        by_process: dict[int, float] = {}
        for (pid, _tid), (_name, used) in self.threads.items():
            by_process[pid] = by_process.get(pid, 0.0) + used
        pid = max(by_process, key=lambda p: by_process[p])
        mine = sorted(
            ((tid, name, used) for (p, tid), (name, used) in self.threads.items() if p == pid and used > 0),
            key=lambda item: -item[2],
        )
        parts = [
            f"{'main thread' if tid == pid else name} {used / requests * 1000:.2f}"
            for tid, name, used in mine[:4]
            if used / requests * 1000 >= 0.01
        ]
        idle = max(0.0, 1 - self.machine / ((os.cpu_count() or 1) * self.wall)) if self.wall else 0.0
        return f"busiest server process, ms of CPU per request by thread: {', '.join(parts)}; machine idle {idle:.0%}"

    def share(self, client_cpu: float) -> str:
        """The client's share of client + server CPU, and what the rest of the machine used meanwhile."""
        both = client_cpu + self.server
        if both <= 0:
            return "n/a"
        return f"{client_cpu / both:.0%}"

    def other_note(self, client_cpu: float) -> str:
        other = max(0.0, self.machine - self.server - client_cpu)
        # A host that lends its cores to other guests shows here: its rows move with the steal.
        stolen = f"; stolen by the hypervisor meanwhile {self.stolen:.1f} s" if self.stolen >= 0.05 else ""
        return (
            f"CPU over {self.wall:.1f} s: server {self.server:.1f} s, client {client_cpu:.1f} s, "
            f"rest of the machine {other:.1f} s (of {2 * self.wall:.0f} s on 2 cores){stolen}"
        )


# ---------------------------------------------------------------- users


@dataclass
class BenchUser:
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_users(base: str, count: int, deposit: str = "5000") -> list[BenchUser]:
    """Register, sign in and fund `count` new users through the API."""
    run = uuid.uuid4().hex[:6]
    users = []
    with httpx.Client(base_url=base, timeout=60) as http:
        for i in range(count):
            name = f"bench_{run}_{i:03d}"
            body = {
                "username": name,
                "email": f"{name}@example.com",
                "password": PASSWORD,
                "first_name": "Bench",
                "last_name": "User",
            }
            reply = http.post("/api/v1/auth/register", json=body)
            if reply.status_code != 201:
                raise RuntimeError(f"register {name}: {reply.status_code} {reply.text[:300]}")
            reply = http.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
            if reply.status_code != 200:
                raise RuntimeError(f"login {name}: {reply.status_code} {reply.text[:300]}")
            user = BenchUser(name, reply.json()["access_token"])
            if deposit != "0":
                reply = http.post("/api/v1/balance/deposit", json={"amount": deposit}, headers=user.headers)
                if reply.status_code != 201:
                    raise RuntimeError(f"deposit {name}: {reply.status_code} {reply.text[:300]}")
            users.append(user)
    return users


def wait_for(check: object, timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll `check()` until it is truthy; RuntimeError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except (httpx.HTTPError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
