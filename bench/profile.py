"""A py-spy profile of the app's worker while wrk places orders (`run.py --profile`).

py-spy samples the busiest server process from outside (`--nonblocking`: the worker is never paused)
and writes collapsed stacks (`--format raw`, which speedscope and flamegraph.pl open); this module sums
them into the frames with the most samples on top of the stack (self) and on the stack (inclusive),
and self samples per package.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import VENV_BIN, cpu_seconds

_LINE = re.compile(r":\d+\)$")
# The process and thread entry frames that only say which thread a sample is from: left out of the
# inclusive list (the event loop's `_run_once` and the thread pool's `WorkerThread.run` stay).
_ENTRY_PACKAGES = frozenset({"click", "gunicorn", "multiprocessing", "runpy", "uvicorn_worker"})
_ENTRY_FRAMES = (
    "Thread._bootstrap",
    "Thread.run (",
    "_run_prod (",
    "<module> (",
    "run_backend_prod (",
    "run_uvicorn_backend_prod (",
    "BaseEventLoop.run_until_complete (",
    "BaseEventLoop.run_forever (",
    "Runner.run (",
    "run (asyncio/runners.py)",
    "run (reflex/",
    "_run (reflex/",
)
_PATH = re.compile(r"\((.*)\)$")


@dataclass
class Profile:
    samples: int
    self_top: list[tuple[str, int]]
    inclusive_top: list[tuple[str, int]]
    packages: list[tuple[str, int]]
    raw_path: Path
    native: int = 0  # samples of threads with no Python frame (native threads): not in the shares

    def text(self, top: int = 15) -> str:
        def pct(n: int) -> str:
            return f"{100 * n / self.samples:5.1f}%"

        lines = [
            f"py-spy: {self.samples} samples with Python frames (+ {self.native} without), collapsed stacks in "
            f"{self.raw_path}",
            "",
            "self time by package:",
        ]
        lines += [f"  {pct(n)}  {name}" for name, n in self.packages[:12]]
        lines += ["", f"top {top} frames by self samples:"]
        lines += [f"  {pct(n)}  {name}" for name, n in self.self_top[:top]]
        lines += ["", f"top {top} frames by inclusive samples (on the stack):"]
        lines += [f"  {pct(n)}  {name}" for name, n in self.inclusive_top[:top]]
        return "\n".join(lines)


def busiest(pids: list[int], sample: Callable[[], None]) -> int:
    """The process that used the most CPU while `sample()` ran."""
    before = {pid: cpu_seconds([pid]) for pid in pids}
    sample()
    return max(pids, key=lambda pid: cpu_seconds([pid]) - before[pid])


def record(pid: int, seconds: float, out: Path, gil: bool, rate: int = 250) -> subprocess.Popen[bytes]:
    """Start py-spy on `pid` for `seconds`; wait on the returned process.

    gil False: every thread that is not idle (waiting threads can still show, as in the issue's
    profile); True: only the thread holding the GIL, i.e. where the worker's Python CPU goes."""
    command = [str(VENV_BIN / "py-spy"), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    command += ["--rate", str(rate), "--nonblocking", "--format", "raw", "--output", str(out)]
    if gil:
        command.append("--gil")
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _short(frame: str) -> str:
    """`func (path/module.py:123)` -> `func (path/module.py)`: samples add up per function."""
    return _LINE.sub(")", frame.strip())


def _package(frame: str) -> str:
    """The top-level package (or stdlib module) of a frame; py-spy prints paths relative to sys.path."""
    match = _PATH.search(frame)
    if not match:
        return frame
    return match.group(1).split("/", 1)[0].removesuffix(".py")


def summarise(raw: Path) -> Profile:
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = native = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        if not stack.strip():
            native += int(count)
            continue
        n = int(count)
        # Frames, outermost first (a leading "process ..."/"thread ..." element is not a frame).
        parts = stack.split(";")
        if parts and parts[0].startswith(("process ", "thread ")):
            parts = parts[1:]
        frames = [_short(f) for f in parts if f.strip()]
        if not frames:
            continue
        total += n
        self_counts[frames[-1]] += n
        packages[_package(frames[-1])] += n
        for frame in set(frames):
            if _package(frame) not in _ENTRY_PACKAGES and not frame.startswith(_ENTRY_FRAMES):
                inclusive[frame] += n
    return Profile(total, self_counts.most_common(), inclusive.most_common(), packages.most_common(), raw, native)
