"""Every bench runs and fills its row of the table: `bench/run.py --quick`, the smoke run of `make bench`.

It checks that the benches work (servers start, wrk, the websocket clients, Chromium and py-spy run, each
workload prints a figure), never how fast anything is. Runs with the browser tests (alone): it starts the
whole app several times and loads the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
# One row per workload of the target table, found by a part of its name.
EXPECTED = [
    "market orders, `make run` (SQLite",
    "ratio to the raw-sqlite3 floor",
    "GET /api/v1/balance",
    "GET /api/v1/inventory/assets",
    "GET /api/v1/portfolio",
    "`/market` in Chromium",
    "orders/s with the DynamoDB mirror on",
    "market orders, PostgreSQL + Redis, 2 workers",
    "price refresh → ",
    "memory per open browser",
    "browsers connecting within",
    "bytes per client per refresh, 10 of 52 prices moved",
    "open `/market` clients over 2 workers",
    "price refresh, 250 coins",
    "RSS per open websocket of the server alone",
]


def test_every_bench_runs_and_prints_its_row(tmp_path: Path) -> None:
    rows_file = tmp_path / "rows.json"
    command = [sys.executable, "bench/run.py", "--quick", "--profile", str(tmp_path), "--json", str(rows_file)]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(result.stdout[-12000:])
    assert result.returncode == 0, result.stderr[-4000:]
    rows = json.loads(rows_file.read_text())
    failed = [r for r in rows if r["workload"].endswith("ERROR")]
    assert not failed, failed
    names = [r["workload"] for r in rows]
    for expected in EXPECTED:
        matching = [r for r in rows if expected in r["workload"]]
        assert matching, f"no row for {expected!r} in {names}"
        assert all(r["figure"] for r in matching), matching
    # The HTTP rows say where the server's CPU went, thread by thread (the profile of what is left).
    balance = next(r for r in rows if "GET /api/v1/balance" in r["workload"])
    assert "ms of CPU per request by thread: main thread" in " ".join(balance["notes"]), balance
    # The order path's py-spy profile was recorded and summarised.
    assert (tmp_path / "orders-pyspy-summary.txt").read_text().count("samples") >= 2
    assert "| workload" in result.stdout
