"""Reflex configuration. CNOP's own settings live in cnop_app/config.py (CNOP_* variables)."""

import reflex as rx

from cnop_app.config import load_server_settings
from cnop_app.observability.multiprocess import prepare_multiprocess_metrics

_server = load_server_settings()
# With Redis, Reflex runs several worker processes: their metrics are aggregated through files
# (prometheus-client's multiprocess mode). Set up here, in the process that starts the workers.
if _server.shared_ui_state:
    prepare_multiprocess_metrics()

config = rx.Config(
    app_name="cnop_app",
    # Prod serves frontend and backend on one port; the browser reaches the backend there too.
    frontend_port=_server.port,
    backend_port=_server.port,
    api_url=_server.public_url,
    deploy_url=_server.public_url,
    redis_url=_server.redis_url,
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
    plugins=[],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
