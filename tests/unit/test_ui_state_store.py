"""Reflex's UI state holds session tokens: never in its disk store (world-readable pickles under .states/).

One process without Redis keeps it in memory; with Redis every worker shares it there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json
from reflex_base.config import get_config
from reflex.istate.manager import StateManager
manager = StateManager.create()
found = {"mode": str(get_config().state_manager_mode.value), "manager": type(manager).__name__}
if hasattr(manager, "lock_expiration"):  # Redis: the opportunistic lock (lease) and the lock it must fit in
    found.update(lease=manager._oplock_enabled, lease_ms=manager.oplock_hold_time_ms, lock_ms=manager.lock_expiration)
print(json.dumps(found))
"""


def _probe(tmp_path: Path, **env: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CNOP_", "REFLEX_"))}
    clean.update(
        {
            "CNOP_DATA_DIR": str(tmp_path / "data"),
            "REFLEX_STATES_WORKDIR": str(tmp_path / "states"),
            "REFLEX_TELEMETRY_ENABLED": "false",
            **env,
        }
    )
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_one_process_keeps_ui_state_in_memory_never_on_disk(tmp_path: Path) -> None:
    assert _probe(tmp_path) == {"mode": "memory", "manager": "StateManagerMemory"}
    assert not (tmp_path / "states").exists()


@pytest.mark.parametrize("variable", ["CNOP_REDIS_URL", "REFLEX_REDIS_URL"])
def test_with_redis_every_worker_shares_it(tmp_path: Path, variable: str) -> None:
    # The probe only reads the configuration: nothing connects to this address.
    result = _probe(tmp_path, **{variable: "redis://127.0.0.1:1/0"})
    assert result["mode"] == "redis"
    assert not (tmp_path / "states").exists()


def test_with_redis_a_worker_leases_its_tabs_state(tmp_path: Path) -> None:
    """A worker keeps the state of the tabs it serves in memory for CNOP_UI_STATE_LEASE_SECONDS (Reflex's
    opportunistic lock), within a Redis lock that outlives the lease; 0 switches the lease off."""
    redis = {"CNOP_REDIS_URL": "redis://127.0.0.1:1/0"}
    default = _probe(tmp_path, **redis)
    assert (default["lease"], default["lease_ms"], default["lock_ms"]) == (True, 30_000, 31_000)
    short = _probe(tmp_path, **redis, CNOP_UI_STATE_LEASE_SECONDS="5")
    assert (short["lease"], short["lease_ms"], short["lock_ms"]) == (True, 5_000, 10_000)
    assert _probe(tmp_path, **redis, CNOP_UI_STATE_LEASE_SECONDS="0")["lease"] is False
