"""`python -m cnop_app.mirror create-tables|backfill|verify|drain` (verify exits 1 on any difference)."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal

from cnop_app.services.mirror.client import create_tables, enabled
from cnop_app.services.mirror.drainer import BATCH_SIZE, drain_batch
from cnop_app.services.mirror.health import backlog
from cnop_app.services.mirror.layout import TABLES, table_name
from cnop_app.services.mirror.tools import backfill, verify


def _drain() -> int:
    total = 0
    while True:
        stats = drain_batch(BATCH_SIZE)
        total += stats.done
        if stats.done == 0:
            break
    print(f"drained {total} outbox row(s)")
    depth, age_ms, failing, last_error = backlog()
    if depth:
        oldest = Decimal(age_ms // 100).scaleb(-1)  # seconds, one decimal
        print(f"{depth} row(s) still waiting (oldest {oldest}s, {failing} failing); last error: {last_error}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnop_app.mirror", description="CNOP DynamoDB mirror tools")
    parser.add_argument("command", choices=("create-tables", "backfill", "verify", "drain"))
    args = parser.parse_args(argv)
    if not enabled():
        print("the mirror is off: set CNOP_DYNAMODB_ENDPOINT (a URL, or `aws`)", file=sys.stderr)
        return 2
    if args.command == "create-tables":
        created = create_tables()
        names = [table_name(kind) for kind in TABLES]
        print(f"created: {', '.join(created) or 'none'}; tables: {', '.join(names)}")
        return 0
    if args.command == "backfill":
        create_tables()
        written = backfill()
        print(f"backfilled {written} item(s)")
        return 0
    if args.command == "verify":
        result = verify()
        for line in result.differences:
            print(line)
        if result.outbox_depth:
            print(f"note: {result.outbox_depth} outbox row(s) not drained yet")
        print(f"checked {result.checked} item(s), {len(result.differences)} difference(s)")
        return 0 if result.ok else 1
    return _drain()
