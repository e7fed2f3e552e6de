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
print(json.dumps({"mode": str(get_config().state_manager_mode.value), "manager": type(manager).__name__}))
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
