"""The backend's server: gunicorn running uvicorn's worker, set up for CNOP (rxconfig.py selects it).

Reflex runs its production backend on granian unless told otherwise, and then on gunicorn with the
worker class that `GUNICORN_CMD_ARGS` names. Measured on the same app and host (docs/performance.md):
- Memory per open browser: granian keeps a 128 KiB read buffer per websocket that an application
  cannot size (152 KB of RSS per websocket for the bare server, against 19 KB here); a browser on
  CNOP costs ~100 KB instead of ~220 KB, and far less stays after it leaves.
- HTTP: this worker's C parser (httptools) on uvloop takes 15-25 % less of the worker's CPU per API
  read than granian (0.57-0.64 ms against 0.75-0.80 ms, granian's own threads included), ~5-10 % less
  per order; alternating runs served the balance read 7-54 % faster.
- The live push to 200 browsers took as long as on granian.

Settings, and why:
- `websockets-sansio`: the websockets library's protocol without its own reader task per connection.
- No permessage-deflate: compressing each push for each tab cost more CPU (and ~300 KB of zlib state per
  browser) than the bytes it saved on a push that is already a small delta.
- No proxy headers: uvicorn would otherwise take the client address from `X-Forwarded-For` of any
  local peer. The app decides which proxies it trusts itself (`CNOP_TRUSTED_PROXIES`, one rule:
  `domain/network.client_ip`), from the real peer address.
- No `Server` header, and no access log of uvicorn's: the app logs every API request itself, as JSON
  with its request id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from uvicorn_worker import UvicornWorker

WORKER_CLASS = "cnop_app.server.CnopWorker"
# The environment variables that choose the server and its workers (rxconfig.py writes the first two
# into its process's environment; a process that starts another app leaves them out).
SERVER_ENV_PREFIXES = ("GUNICORN_", "WEB_CONCURRENCY", "GRANIAN_")
# Reflex's own rule for its workers when UI state is shared (Redis): two per core and one, at most 8.
MAX_WORKERS = 8


class CnopWorker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "uvloop",
        "http": "httptools",
        "ws": "websockets-sansio",
        "ws_per_message_deflate": False,
        "proxy_headers": False,
        "server_header": False,
        "access_log": False,
        "lifespan": "on",
        # On SIGTERM, open connections get this long to finish before the app's own stop (which lets a
        # running refresh or mirror batch finish, `CNOP_SHUTDOWN_GRACE_SECONDS`): both fit in the 20 s
        # Kubernetes gives a pod (deploy/k8s/app.yaml).
        "timeout_graceful_shutdown": 10,
    }


def gunicorn_args(existing: str = "") -> str:
    """`GUNICORN_CMD_ARGS` for Reflex's gunicorn: this worker class, then whatever the operator set
    (gunicorn lets the last of a repeated option win). Idempotent: rxconfig.py runs in every process."""
    if WORKER_CLASS in existing:
        return existing
    return f"--worker-class {WORKER_CLASS} --keep-alive 5 {existing}".strip()


def worker_count(environ: Mapping[str, str], shared_ui_state: bool, cpus: int) -> str:
    """`WEB_CONCURRENCY`, gunicorn's number of workers: as set; else `GRANIAN_WORKERS`, the name earlier
    releases read (a deployment that set it keeps its workers); else Reflex's rule, which gave several
    workers only when UI state is shared (one process cannot share in-memory UI state)."""
    for name in ("WEB_CONCURRENCY", "GRANIAN_WORKERS"):
        if environ.get(name, "").strip():
            return environ[name].strip()
    return str(min(cpus * 2 + 1, MAX_WORKERS)) if shared_ui_state else "1"
