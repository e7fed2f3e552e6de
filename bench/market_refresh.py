"""Refresh cost for 250 coins served by the local fake CoinGecko: wall ms, CPU ms and DB rows per refresh;
the new market table each browser push starts from (the whole catalogue read and formatted, as
`state.market.snapshot` does after every refresh); then the work after a refresh at many accounts: what
runs before the browsers get the new prices (limit order matching, a portfolio snapshot per account)
and the housekeeping after the push.

Usage: PYTHONPATH=. .venv/bin/python bench/market_refresh.py [refreshes] [--accounts N] [--history K] [--json]
(temporary data dir, no network). The accounts, one holding each, and K past snapshots each are written
directly: the cost measured is the refresh's, not sign-up's. bench/run.py runs it in its own process (it
rewrites this process's CNOP_* settings) with --json, which adds one `BENCH_JSON {...}` line for the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert

from cnop_app import scheduler
from cnop_app.config import reset_settings
from cnop_app.db import write_engine
from cnop_app.manage import migrate
from cnop_app.models import Account, Holding, PortfolioSnapshot, utcnow
from cnop_app.services import market, trading
from cnop_app.services.market import logos
from cnop_app.state.market import snapshot
from tests.support.coingecko_server import FakeCoinGecko, Reply, many_coins

# Run from the repository root with PYTHONPATH=. (as `make bench` does).


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("refreshes", nargs="?", type=int, default=20, help="refreshes to measure (default 20)")
    parser.add_argument("--accounts", type=int, default=1000, help="accounts for the after-refresh work")
    parser.add_argument("--history", type=int, default=300, help="past snapshots per account (5 min apart)")
    parser.add_argument("--resting", type=int, default=1000, help="resting limit orders the matcher then checks")
    parser.add_argument("--json", action="store_true", help="also print the figures as one BENCH_JSON line")
    args = parser.parse_args()
    runs = args.refreshes
    if runs < 1:
        parser.error("refreshes must be at least 1")
    with tempfile.TemporaryDirectory(prefix="cnop-bench-") as data_dir, FakeCoinGecko(many_coins(250)) as feed:
        for key in [k for k in os.environ if k.startswith("CNOP_")]:
            del os.environ[key]
        os.environ.update(
            {
                "CNOP_DATA_DIR": data_dir,
                "CNOP_MARKET_SOURCE": "coingecko",
                "CNOP_COINGECKO_BASE_URL": feed.base_url,
                "CNOP_MARKET_COINS": "250",
                "CNOP_LOG_LEVEL": "ERROR",
                "CNOP_LOG_JSON": "false",
            }
        )
        reset_settings()  # read the environment set just above
        migrate()
        market.seed_from_snapshot()
        writes: dict[str, int] = {"rows": 0, "statements": 0}

        @event.listens_for(write_engine(), "after_cursor_execute")
        def _count(_conn: Any, cursor: Any, statement: str, _params: Any, _ctx: Any, executemany: bool) -> None:
            if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
                writes["statements"] += 1
                writes["rows"] += max(cursor.rowcount, 0)

        first = market.refresh_prices()  # inserts ~200 new assets and their 7-day backfill
        print(f"first refresh (new assets + backfill): {first.duration_ms} ms, {writes['rows']} rows written")
        snapshot.current()  # the table of the first refresh: each measured one is built from its predecessor
        wall, cpu, rows, stmts, table = [], [], [], [], []
        # Bodies serialized up front: the fake server's own JSON work stays out of the figures.
        bodies = []
        for i in range(runs):
            coins = many_coins(250)
            for coin in coins:  # every price moves, as in a real refresh
                coin["current_price"] = coin["current_price"] * (1 + (i + 1) / 1000)
            bodies.append(json.dumps(coins).encode())
        print(f"response body: {len(bodies[0]) / 1e3:.0f} kB for 250 coins with 7-day sparklines")
        for i in range(runs):
            feed.default = Reply(body=bodies[i])
            writes["rows"] = writes["statements"] = 0
            t0, c0 = time.perf_counter(), time.thread_time()
            result = market.refresh_prices()
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.thread_time() - c0) * 1000)
            rows.append(writes["rows"])
            stmts.append(writes["statements"])
            assert result.outcome == "ok" and result.stored == 250, result
            snapshot.invalidate()  # as the push does right after new prices were stored
            t0 = time.perf_counter()
            snapshot.current()
            table.append((time.perf_counter() - t0) * 1000)
        body = feed.requests[-1]
        print(f"coins per refresh: 250 (one HTTP call each; {feed.hits} calls for {runs + 1} refreshes)")
        print(f"refreshes measured: {runs}, last query: {body.query.get('per_page')} per page")
        print(f"wall ms per refresh: median {statistics.median(wall):.1f}, min {min(wall):.1f}, max {max(wall):.1f}")
        print(f"CPU ms per refresh (refresh thread): median {statistics.median(cpu):.1f}")
        print(f"new market table for the push: median {statistics.median(table):.1f} ms, min {min(table):.1f}")
        print(
            f"DB rows written per refresh: {statistics.median(rows):.0f} in {statistics.median(stmts):.0f} statements"
        )
        size = Path(data_dir, "cnop.db").stat().st_size + Path(data_dir, "cnop.db-wal").stat().st_size
        print(f"database size after the run: {size / 1e6:.1f} MB")
        before_push, after_push = _after_refresh(args.accounts, args.history, min(runs, 5))
        print(
            f"after each refresh with {args.accounts} accounts and {args.accounts * args.history} past snapshots: "
            f"before the push (limit orders, snapshots) median {before_push:.0f} ms, "
            f"after it (tidy-up) median {after_push:.0f} ms"
        )
        resting = min(args.resting, args.accounts)
        matcher_ms = _matcher_with_resting_orders(resting, min(runs, 5))
        print(f"the limit-order matcher with {resting} resting limit orders, none crossed: median {matcher_ms:.1f} ms")
        if args.json:
            figures = {
                "refreshes": runs,
                "wall_ms": statistics.median(wall),
                "cpu_ms": statistics.median(cpu),
                "table_ms": statistics.median(table),
                "rows": statistics.median(rows),
                "statements": statistics.median(stmts),
                "accounts": args.accounts,
                "snapshots": args.accounts * args.history,
                "before_push_ms": before_push,
                "after_push_ms": after_push,
                "resting_orders": resting,
                "matcher_ms": matcher_ms,
            }
            print("BENCH_JSON " + json.dumps(figures))


def _after_refresh(accounts: int, history: int, runs: int) -> tuple[float, float]:
    """Median ms of the app's post-refresh work before the push and after it, at `accounts` accounts."""
    now = utcnow()
    names = [f"bench_{i:06d}" for i in range(accounts)]
    with write_engine().begin() as conn:
        conn.execute(insert(Account.__table__), [{"username": n, "cash": Decimal(1000), "held": 0} for n in names])  # type: ignore[attr-defined]
        holdings = [
            {"username": n, "asset_id": "BTC", "quantity": Decimal("0.01"), "held_quantity": 0}
            | {"average_cost": Decimal(60000), "realized_pnl": 0}
            for n in names
        ]
        conn.execute(insert(Holding.__table__), holdings)  # type: ignore[attr-defined]
        for k in range(1, history + 1):
            at = now - timedelta(minutes=5 * k)
            conn.execute(
                insert(PortfolioSnapshot.__table__),  # type: ignore[attr-defined]
                [{"username": n, "at": at, "cash": 1000, "holdings_value": 600, "total_value": 1600} for n in names],
            )
    scheduler.register_followups()  # what the app runs after each refresh, before the push and after it
    # Except the logos: a new feed's 250 are fetched a few per refresh until all are copied (a catch-up
    # bounded by its own time budget), not a cost of every refresh.
    scheduler.remove_post_refresh_callback(logos.refresh_logos)
    before, after = [], []
    for _ in range(runs):
        market.refresh_prices()
        t0 = time.perf_counter()
        scheduler.run_post_refresh_callbacks()
        t1 = time.perf_counter()
        scheduler.run_post_refresh_callbacks(after_push=True)
        before.append((t1 - t0) * 1000)
        after.append((time.perf_counter() - t1) * 1000)
    return statistics.median(before), statistics.median(after)


def _matcher_with_resting_orders(count: int, runs: int) -> float:
    """Median ms of the matcher (before every push) once `count` of the accounts each have a limit buy
    resting far below the market, placed as a user places it."""
    for i in range(count):
        order = {"order_type": "limit_buy", "asset_id": "BTC", "quantity": "0.01", "price": "1000"}
        trading.place_order(f"bench_{i:06d}", order)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        assert trading.match_limit_orders() == 0
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


if __name__ == "__main__":
    main()
