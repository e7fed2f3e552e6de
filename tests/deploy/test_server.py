"""The backend as `deploy/entrypoint.sh serve` runs it: gunicorn with CNOP's uvicorn worker
(cnop_app/server.py), checked through what a client sees."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

from bench.common import group_pids
from tests.deploy.support import ENTRYPOINT, app_env, process, run, wait_http
from tests.support.helpers import STRONG_PASSWORD, free_port, user_payload


def _processes(pgid: int) -> list[str]:
    """The command lines of the live processes in the group `pgid`."""
    found = []
    for pid in group_pids(pgid):
        with contextlib.suppress(FileNotFoundError):  # exited meanwhile
            found.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
    return found


def test_the_backend_runs_on_cnops_worker_and_stops_with_a_browser_connected(tmp_path: Path) -> None:
    port = free_port()
    env = app_env(tmp_path, port)
    assert run([str(ENTRYPOINT), "migrate"], env=env).returncode == 0
    log = tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    with process([str(ENTRYPOINT), "serve"], env, log) as proc:
        health = wait_http(f"{base}/health", proc, log)
        assert "server" not in health.headers  # no server banner
        assert any("gunicorn" in line and "cnop_app.server.CnopWorker" in line for line in _processes(proc.pid))

        # A client address in X-Forwarded-For is not believed from a peer the app does not trust (no
        # CNOP_TRUSTED_PROXIES here): the server must not rewrite the peer from it either.
        spoofed = {"X-Forwarded-For": "203.0.113.9"}
        with httpx.Client(base_url=base, timeout=30) as http:
            registered = http.post("/api/v1/auth/register", json=user_payload("server_01"), headers=spoofed)
            assert registered.status_code == 201, registered.text
            login = http.post(
                "/api/v1/auth/login", json={"username": "server_01", "password": STRONG_PASSWORD}, headers=spoofed
            )
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
            sessions = http.get("/api/v1/auth/sessions", headers={"Authorization": f"Bearer {token}", **spoofed})
        assert sessions.status_code == 200, sessions.text
        assert [s["ip"] for s in sessions.json()["sessions"]] == ["127.0.0.1"]

        # A browser's websocket: permessage-deflate is offered (as Chromium does) and declined, and
        # Engine.IO opens the session.
        with connect(f"ws://127.0.0.1:{port}/_event/?EIO=4&transport=websocket", compression="deflate") as ws:
            assert ws.response is not None
            assert "sec-websocket-extensions" not in ws.response.headers
            assert ws.recv(timeout=10).startswith('0{"sid":')
            # A graceful stop with the browser still connected, sent as Docker and Kubernetes send it: to
            # the entrypoint alone (PID 1 of the container). gunicorn must get it too (Reflex, its parent,
            # does not pass it on), close the socket and exit well within the 20 s a pod gets.
            started = time.monotonic()
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
            seconds = time.monotonic() - started
        assert proc.returncode == 0, log.read_text()[-3000:]
        assert seconds < 15, f"stopped in {seconds:.1f} s"
        assert _processes(proc.pid) == []  # nothing of the server left running
