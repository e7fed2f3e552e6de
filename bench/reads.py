"""Reads with wrk, 16 keep-alive connections: the balance and the portfolio of each connection's own
user (bearer token), and the public asset list with 100 coins (`limit=100`)."""

from __future__ import annotations

from collections.abc import Sequence

from bench.common import BenchUser, Row
from bench.servers import App
from bench.wrk import WrkResult, run_wrk

READS = (
    # (name, path, authenticated, target req/s)
    ("GET /api/v1/balance (authenticated)", "/api/v1/balance", True, 2000),
    ("GET /api/v1/inventory/assets?limit=100 (100 coins)", "/api/v1/inventory/assets?limit=100", False, 1000),
    ("GET /api/v1/portfolio (authenticated)", "/api/v1/portfolio", True, 1000),
)


def run_read(app: App, users: Sequence[BenchUser], path: str, authenticated: bool, seconds: float) -> WrkResult:
    tokens = [u.token if authenticated else None for u in users]
    return run_wrk(app.base, tokens, ["get", path], seconds, app.pids())


def read_rows(app: App, users: Sequence[BenchUser], seconds: float) -> list[Row]:
    rows = []
    for name, path, authenticated, target in READS:
        result = run_read(app, users, path, authenticated, seconds)
        rows.append(
            Row(
                name,
                result.figure("req"),
                f"≥ {target:,} req/s",
                result.rate >= target and result.errors == 0,
                client_share=result.cpu.share(result.client_cpu),
                notes=[result.detail()],
            )
        )
    return rows
