"""Run wrk (Debian's package, `make bench` installs it) with bench/load.lua and read its figures back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, CpuWindow

SCRIPT = ROOT / "bench" / "load.lua"


@dataclass
class WrkResult:
    requests: int
    seconds: float
    ok: int
    errors: int  # non-2xx responses (counted by the Lua response callback) + socket errors
    p50: float  # seconds, wrk's latency distribution (all requests)
    p90: float
    p99: float
    max: float
    client_cpu: float  # wrk's user + system CPU seconds
    codes: str
    cpu: CpuWindow

    @property
    def rate(self) -> float:
        """Successful (2xx) requests per second."""
        return self.ok / self.seconds if self.seconds else 0.0

    def figure(self, unit: str) -> str:
        return (
            f"{self.rate:,.0f} {unit}/s, p50 {self.p50 * 1000:.1f} ms, p99 {self.p99 * 1000:.1f} ms, "
            f"{self.errors} errors"
        )

    def detail(self) -> str:
        codes = f" (status codes of errors: {self.codes.strip()[:80]})" if self.codes.strip() else ""
        return (
            f"{self.ok} ok of {self.requests} in {self.seconds:.1f} s; p90 {self.p90 * 1000:.1f} ms, "
            f"max {self.max * 1000:.0f} ms{codes}; {self.cpu.other_note(self.client_cpu)}; "
            f"{self.cpu.threads_note(self.requests)}"
        )


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed: run `make bench` (it installs Debian's wrk)")
    return found


def run_wrk(
    base: str,
    tokens: Sequence[str | None],
    mode_args: Sequence[str],
    seconds: float,
    server_pids: Sequence[int],
    core: int | None = None,
) -> WrkResult:
    """One wrk thread and one keep-alive connection per token (None: anonymous)."""
    connections = len(tokens)
    with tempfile.NamedTemporaryFile("w", prefix="cnop-wrk-", suffix=".tokens", delete=False) as f:
        f.write("\n".join(t or "-" for t in tokens) + "\n")
        tokens_file = f.name
    command = [
        wrk_binary(),
        "-t",
        str(connections),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        base,
        "--",
        tokens_file,
        *mode_args,
    ]
    if core is not None:
        command = ["taskset", "-c", str(core), *command]
    try:
        with CpuWindow(server_pids) as window:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            _pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
            proc.stdout.close()  # type: ignore[union-attr]
            proc.stderr.close()  # type: ignore[union-attr]
    finally:
        Path(tokens_file).unlink(missing_ok=True)
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if proc.returncode or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out[-2000:]}\n{err[-2000:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        ok=data["ok"],
        errors=data["errors"] + data["socket_errors"],
        p50=data["p50_us"] / 1e6,
        p90=data["p90_us"] / 1e6,
        p99=data["p99_us"] / 1e6,
        max=data["max_us"] / 1e6,
        client_cpu=usage.ru_utime + usage.ru_stime,
        codes=data["codes"],
        cpu=window,
    )
