"""Several processes opening a new SQLite database at the same moment (a worker and its mirror drainer,
two app processes on one file): every one of them gets its connection."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 4
DATABASES = 40

# Each process opens database k (all new files) at the same instant as the others: start + k * step.
OPENER = """
import sys, time
from cnop_app.db import _make_engine
directory, start, step, count = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
for k in range(count):
    engine = _make_engine(f"sqlite:///{directory}/db{k}.sqlite", True)
    while time.time() < start + k * step:
        pass
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
        conn.commit()
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
print("ok")
"""


def test_processes_opening_a_new_database_together_all_get_a_connection(tmp_path: Path) -> None:
    start, step = time.time() + 3, 0.05  # after the imports
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, str(tmp_path), str(start), str(step), str(DATABASES)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    results = [proc.communicate(timeout=120) for proc in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0 and out.strip() == "ok", err[-2000:]
