"""Market orders with wrk: 16 keep-alive connections, each its own funded user, tiny alternating ETH
market buys and sells (the side flips after each 2xx); orders/s, p50/p99 and errors from wrk."""

from __future__ import annotations

from collections.abc import Sequence

from bench.common import BenchUser, Row
from bench.floor import floor_rate
from bench.servers import App
from bench.wrk import WrkResult, run_wrk

ASSET = "ETH"
QUANTITY = "0.001"


def place_orders(
    app: App, users: Sequence[BenchUser], seconds: float, warmup: float = 0, extra_server_pids: Sequence[int] = ()
) -> WrkResult:
    """`warmup` seconds of the same load first (not measured), then `seconds` measured."""
    tokens = [u.token for u in users]
    args = ["orders", ASSET, QUANTITY]
    if warmup:
        run_wrk(app.base, tokens, args, warmup, app.pids())
    return run_wrk(app.base, tokens, args, seconds, [*app.pids(), *extra_server_pids])


def sqlite_row(result: WrkResult, connections: int) -> Row:
    passed = result.rate >= 500 and result.p99 <= 0.050 and result.errors == 0
    return Row(
        f"market orders, `make run` (SQLite, 1 worker), {connections} conns",
        result.figure("orders"),
        "≥ 500/s, p99 ≤ 50 ms, 0 errors",
        passed,
        client_share=result.cpu.share(result.client_cpu),
        notes=[result.detail()],
    )


def postgres_row(result: WrkResult, workers: int, connections: int) -> Row:
    passed = result.rate >= 800 and result.p99 <= 0.050 and result.errors == 0
    return Row(
        f"market orders, PostgreSQL + Redis, {workers} workers, {connections} conns",
        result.figure("orders"),
        "≥ 800/s, p99 ≤ 50 ms",
        passed,
        client_share=result.cpu.share(result.client_cpu),
        notes=[result.detail() + " (server CPU includes PostgreSQL and Redis)"],
    )


def floor_row(app_row: Row, app_rate: float, orders: int) -> Row:
    """The floor's row; the app's orders row gets the same ratio in its "ratio to floor" column."""
    floor = floor_rate(orders)
    ratio = floor / app_rate if app_rate else float("inf")
    app_row.ratio = f"{ratio:.1f}×"
    return Row(
        "ratio to the raw-sqlite3 floor (same writes, one process)",
        f"floor {floor:,.0f} orders/s vs app {app_rate:,.0f}/s",
        "printed; ≤ 10×",
        ratio <= 10,
        ratio=f"{ratio:.1f}×",
        notes=[f"floor: {orders} orders, one BEGIN IMMEDIATE … COMMIT each, stdlib sqlite3, one thread"],
    )
