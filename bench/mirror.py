"""Orders/s with the DynamoDB mirror on (outbox rows written with each order, the app's drainer running
against moto's server) vs off (the same app without CNOP_DYNAMODB_ENDPOINT), and how fast the drainer
empties the outbox after the load."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from bench.common import Row
from bench.wrk import WrkResult


def outbox_depth(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        return int(db.execute("SELECT count(*) FROM outbox WHERE processed_at IS NULL").fetchone()[0])


def drain_note(database: Path, timeout: float) -> str:
    """Seconds until the outbox left by the load is empty (the app's own drainer does the work)."""
    start_depth = outbox_depth(database)
    started = time.monotonic()
    depth = start_depth
    while depth and time.monotonic() - started < timeout:
        time.sleep(0.5)
        depth = outbox_depth(database)
    took = time.monotonic() - started
    if depth:
        return f"outbox after the load: {start_depth} rows, {depth} still undrained after {took:.0f} s"
    rate = f"{start_depth / took:,.0f} rows/s" if took > 0.5 else "at once"
    return f"outbox after the load: {start_depth} rows, drained in {took:.1f} s ({rate})"


def mirror_row(off: WrkResult, on: WrkResult, drained: str) -> Row:
    ratio = on.rate / off.rate if off.rate else 0.0
    return Row(
        "orders/s with the DynamoDB mirror on (drainer running) vs off",
        f"on {on.rate:,.0f}/s vs off {off.rate:,.0f}/s = {ratio:.0%}",
        "≥ 80 %",
        ratio >= 0.8,
        client_share=on.cpu.share(on.client_cpu),
        notes=[f"mirror on: {on.figure('orders')}; {on.detail()}", drained],
    )
