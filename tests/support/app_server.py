"""Start the real app the way `make run` does (migrate, seed, `reflex run --env prod`) on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from cnop_app.server import SERVER_ENV_PREFIXES

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 240


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without CNOP_, REFLEX_ and server settings (the Makefile exports some,
    rxconfig.py writes the server's), plus `extra`: for an app started from a clean slate (the deploy
    tests' entrypoint, the benches' instances)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CNOP_", "REFLEX_", *SERVER_ENV_PREFIXES))}
    env.update(extra)
    return env


def _env(data_dir: Path, port: int, extra: dict[str, str] | None) -> dict[str, str]:
    # The server settings rxconfig.py writes into its process's environment stay out (a test process that
    # imported it would hand its own worker count to every app).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CNOP_", *SERVER_ENV_PREFIXES))}
    env.update(
        {
            "CNOP_DATA_DIR": str(data_dir),
            "CNOP_PORT": str(port),
            "CNOP_ENV": "development",
            "CNOP_MARKET_SOURCE": "snapshot",
            "CNOP_LOG_LEVEL": "WARNING",
            "REFLEX_DIR": str(ROOT / ".tools" / "reflex"),
            "BUN_INSTALL_CACHE_DIR": str(ROOT / ".tools" / "bun-cache"),
            "REFLEX_BUN_PATH": str(ROOT / ".tools" / "node_modules" / "bun" / "bin" / "bun.exe"),
            "REFLEX_TELEMETRY_ENABLED": "false",
            # Its own frontend build dir: a developer's `make run` (another port baked into the
            # bundle) must not share it.
            "REFLEX_WEB_WORKDIR": str(data_dir / "web"),
            "REFLEX_STATES_WORKDIR": str(data_dir / "states"),
            "REFLEX_CHECK_LATEST_VERSION": "false",
        }
    )
    env.update(extra or {})
    return env


@contextmanager
def running_app(data_dir: Path, port: int, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Yield the base URL of a running app; stop it (whole process group) afterwards."""
    env = _env(data_dir, port, extra_env)
    python = str(VENV_BIN / "python")
    subprocess.run([python, "-m", "cnop_app.manage", "migrate"], cwd=ROOT, env=env, check=True)
    subprocess.run([python, "-m", "cnop_app.manage", "seed"], cwd=ROOT, env=env, check=True)
    log_path = data_dir / "app.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "reflex"),
            "run",
            "--env",
            "prod",
            "--single-port",
            "--frontend-port",
            str(port),
            "--backend-port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200 and httpx.get(base, timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"app did not start in {START_TIMEOUT_S}s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
        yield base
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
