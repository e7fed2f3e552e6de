"""Reflex configuration. CNOP's own settings live in cnop_app/config.py (CNOP_* variables)."""

import os

import reflex as rx

from cnop_app.config import load_server_settings
from cnop_app.observability.multiprocess import prepare_multiprocess_metrics
from cnop_app.server import gunicorn_args, worker_count
from cnop_app.theme import radix_themes

_server = load_server_settings()
# The production backend runs on gunicorn with CNOP's uvicorn worker (cnop_app/server.py says why),
# not on granian. Reflex and gunicorn read these from the environment only.
os.environ.setdefault("REFLEX_USE_GRANIAN", "false")
os.environ["GUNICORN_CMD_ARGS"] = gunicorn_args(os.environ.get("GUNICORN_CMD_ARGS", ""))
os.environ["WEB_CONCURRENCY"] = worker_count(os.environ, _server.shared_ui_state, os.cpu_count() or 1)
# With Redis, Reflex runs several worker processes: their metrics are aggregated through files
# (prometheus-client's multiprocess mode). Set up here, in the process that starts the workers.
if _server.shared_ui_state:
    prepare_multiprocess_metrics()
    # Reflex's opportunistic lock: a worker that holds a tab's lock keeps the tab's state in memory for
    # the lease and writes it back once, instead of a Redis read and write per event and per live push
    # (half the CPU of a push). Another worker that needs the tab breaks the lease at once; after a
    # crash it waits for the lock to expire. Reflex reads these two from the environment only.
    os.environ.setdefault("REFLEX_OPLOCK_ENABLED", "true" if _server.ui_state_lease_seconds else "false")
    os.environ.setdefault("REFLEX_OPLOCK_HOLD_TIME", f"{_server.ui_state_lease_seconds}s")

config = rx.Config(
    app_name="cnop_app",
    # Prod serves frontend and backend on one port; the browser reaches the backend there too.
    frontend_port=_server.port,
    backend_port=_server.port,
    api_url=_server.public_url,
    deploy_url=_server.public_url,
    redis_url=_server.redis_url,
    redis_lock_expiration=_server.redis_lock_ms,
    # Credentialed cross-origin calls only from the public URL's origin (Reflex's default reflects any).
    cors_allowed_origins=_server.cors_origins,
    # UI state holds session tokens: in Redis when several workers share it, else in this process's
    # memory. Never Reflex's default disk store (world-readable pickles under .states/, rescanned on
    # every write cycle).
    state_manager_mode=(
        rx.constants.StateManagerMode.REDIS if _server.shared_ui_state else rx.constants.StateManagerMode.MEMORY
    ),
    telemetry_enabled=False,
    show_built_with_reflex=False,
    # Radix Themes with the app's theme, loading only the colour scales the app uses (cnop_app/theme.py).
    plugins=[radix_themes()],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
