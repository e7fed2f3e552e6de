"""Reflex configuration. CNOP's own settings live in cnop_app/config.py (CNOP_* variables)."""

import os

import reflex as rx

_port = int(os.environ.get("CNOP_PORT", "3000"))

config = rx.Config(
    app_name="cnop_app",
    # Prod serves frontend and backend on one port; the browser reaches the backend there too.
    frontend_port=_port,
    backend_port=_port,
    api_url=os.environ.get("CNOP_PUBLIC_URL", f"http://localhost:{_port}"),
    deploy_url=os.environ.get("CNOP_PUBLIC_URL", f"http://localhost:{_port}"),
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
