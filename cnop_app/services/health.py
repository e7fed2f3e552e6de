"""Component health checks. Features register a check; GET /health reports them all."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from cnop_app.db import read_session

HealthCheck = Callable[[], dict[str, Any]]
_checks: dict[str, HealthCheck] = {}
_ORDER = {"ok": 0, "degraded": 1, "down": 2}


def register_check(name: str, check: HealthCheck) -> None:
    """`check` returns a dict with at least "status": "ok" | "degraded" | "down"."""
    _checks[name] = check


def _database() -> dict[str, Any]:
    start = time.perf_counter()
    with read_session() as session:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    return {"status": "ok", "latency_ms": round((time.perf_counter() - start) * 1000, 2)}


register_check("database", _database)


def report() -> dict[str, Any]:
    components: dict[str, Any] = {}
    worst = "ok"
    for name, check in list(_checks.items()):
        try:
            result = check()
        except Exception as exc:  # a failing check is a "down" component, not a crashed endpoint
            result = {"status": "down", "error": type(exc).__name__}
        components[name] = result
        status = result.get("status", "down")
        if _ORDER.get(status, 2) > _ORDER[worst]:
            worst = status
    return {"status": worst, "components": components}
