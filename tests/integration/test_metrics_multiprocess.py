"""/metrics adds up every worker of an instance (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]

WORKER = """
import sys
from cnop_app.observability.metrics import AUTH_EVENTS, ORDERS
from cnop_app.services import activity
for _ in range(int(sys.argv[1])):
    ORDERS.labels("market_buy", "completed").inc()
AUTH_EVENTS.labels("login_ok").inc()
activity.REFRESH_INTERVAL.set(float(sys.argv[2]))
"""

RENDER = """
from cnop_app.observability.metrics import render
print(render()[0].decode())
"""


def _run(code: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counters_of_every_worker_add_up(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNOP_")}
    env.update(PYTHONPATH=str(ROOT), PROMETHEUS_MULTIPROC_DIR=str(directory), CNOP_DATA_DIR=str(tmp_path / "data"))
    _run(WORKER, env, "3", "300")  # two "workers", each its own process
    _run(WORKER, env, "4", "1800")
    samples = _samples(_run(RENDER, env))
    orders = samples[("cnop_orders_total", (("order_type", "market_buy"), ("status", "completed")))]
    assert orders == 7
    assert samples[("cnop_auth_events_total", (("event", "login_ok"),))] == 2
    # A gauge in "mostrecent" mode reports the last value set by any worker, not a sum.
    assert samples[("cnop_market_refresh_interval_seconds", ())] == 1800
