"""DynamoDB mirror benchmark against a local moto server this script starts (and stops) itself.

1. What the outbox costs the writer: market orders and deposits per second with the mirror off,
   on (outbox rows only), and on with the drainer running, measured in the same run, alternating.
2. Drain rate: a backlog of 10,000 outbox rows (real deposits: ledger + balance rows) drained
   into DynamoDB, in items per second.

Usage (from the repository root):
    PYTHONPATH=. .venv/bin/python bench/mirror.py [--backlog 10000] [--orders 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
from sqlmodel import func, select

from cnop_app.config import reset_settings
from cnop_app.db import dispose_engines, read_session, write_session
from cnop_app.manage import migrate
from cnop_app.models import Asset, Outbox
from cnop_app.services import accounts, auth, mirror, outbox, trading

PASSWORD = "Correct-Horse-42"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)]
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    with open(workdir / "moto.log", "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            return process, endpoint
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.05)


def set_mirror(endpoint: str | None) -> None:
    if endpoint:
        os.environ["CNOP_DYNAMODB_ENDPOINT"] = endpoint
    else:
        os.environ.pop("CNOP_DYNAMODB_ENDPOINT", None)
    reset_settings()


def outbox_depth() -> int:
    with read_session() as session:
        return int(session.exec(select(func.count()).where(Outbox.processed_at.is_(None))).one())  # type: ignore[union-attr]


def drain_everything() -> int:
    total = 0
    while outbox_depth():
        total += mirror.drain_once(mirror.BATCH_SIZE)
    return total


def rate(count: int, action: Callable[[int], None]) -> float:
    start = time.perf_counter()
    for i in range(count):
        action(i)
    return count / (time.perf_counter() - start)


class Drainer:
    """The app's lifespan drainer, entered and left from this synchronous script."""

    def __enter__(self) -> Drainer:
        self.runner = asyncio.Runner()
        self.lifespan = mirror.mirror_lifespan()
        self.runner.run(self.lifespan.__aenter__())
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.run(self.lifespan.__aexit__(None, None, None))
        self.runner.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backlog", type=int, default=10_000, help="outbox rows to drain")
    parser.add_argument("--orders", type=int, default=400, help="orders (and deposits) per round and mode")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="cnop-bench-mirror-"))
    data_dir = workdir / "data"
    data_dir.mkdir()
    for key in [k for k in os.environ if k.startswith("CNOP_")]:
        del os.environ[key]
    os.environ.update(
        CNOP_DATA_DIR=str(data_dir),
        CNOP_JWT_SECRET="bench-secret-" + "x" * 40,
        CNOP_LOG_LEVEL="WARNING",
        CNOP_LOG_JSON="false",
        CNOP_MARKET_SOURCE="snapshot",
        CNOP_DAILY_DEPOSIT_LIMIT="100000000",
        CNOP_DAILY_WITHDRAW_LIMIT="100000000",
        CNOP_DYNAMODB_TABLE_PREFIX="bench-",
    )
    reset_settings()
    dispose_engines()
    migrate(f"sqlite:///{data_dir / 'cnop.db'}")
    process, endpoint = start_moto(workdir)
    try:
        set_mirror(endpoint)
        mirror.reset_client()
        mirror.create_tables()
        users = [f"bench_user_{i:02d}" for i in range(20)]
        for name in users:
            auth.register({"username": name, "email": f"{name}@example.com", "password": PASSWORD,
                           "first_name": "Bench", "last_name": "User"})  # fmt: skip
            accounts.deposit(name, "1000000")
        with write_session() as session:
            asset = Asset(id="BTC", name="Bitcoin", price_usd=Decimal("50000"), market_cap_rank=1, source="simulated")
            session.add(asset)
            session.flush()
            outbox.emit(session, "asset", "BTC", asset)
        drain_everything()

        def order(i: int) -> None:
            side = "market_buy" if (i // len(users)) % 2 == 0 else "market_sell"
            trading.place_order(users[i % len(users)], {"order_type": side, "asset_id": "BTC", "quantity": "0.001"})

        def deposit(i: int) -> None:
            accounts.deposit(users[i % len(users)], "1.00")

        results: dict[str, dict[str, list[float]]] = {"orders": {}, "deposits": {}}
        modes = ("off", "on: outbox only", "on: outbox + live drainer")
        for round_no in range(args.rounds):
            # Rotate the order: deposits get slower as today's ledger grows (daily-limit sum).
            for mode in modes[round_no % 3 :] + modes[: round_no % 3]:
                set_mirror(None if mode == "off" else endpoint)
                for label, action in (("orders", order), ("deposits", deposit)):
                    if mode.endswith("drainer"):
                        with Drainer():
                            value = rate(args.orders, action)
                            drain_everything()
                    else:
                        value = rate(args.orders, action)
                    results[label].setdefault(mode, []).append(value)
                set_mirror(endpoint)
                drain_everything()

        print(f"\nWriter throughput, median of {args.rounds} rounds x {args.orders} operations (SQLite, 1 thread):")
        for label, by_mode in results.items():
            base = statistics.median(by_mode["off"])
            for mode in modes:
                value = statistics.median(by_mode[mode])
                print(f"  {label:8s} mirror {mode:28s} {value:8.1f}/s  ({(value / base - 1) * 100:+6.1f}% vs off)")

        # Drain rate of a 10,000-row backlog (deposits emit a ledger row and a balance row each).
        set_mirror(endpoint)
        drain_everything()
        mirror.backfill()  # the "mirror off" rounds wrote nothing to the outbox
        start_rows = outbox_depth()
        produced = time.perf_counter()
        for i in range((args.backlog + 1) // 2):
            deposit(i)
        produced = time.perf_counter() - produced
        backlog = outbox_depth() - start_rows
        start = time.perf_counter()
        drained = drain_everything()
        elapsed = time.perf_counter() - start
        print(f"\nBacklog of {backlog} outbox rows (made by {(args.backlog + 1) // 2} deposits in {produced:.1f}s):")
        print(
            f"  drained {drained} rows in {elapsed:.2f}s = {drained / elapsed:.0f} items/s "
            f"(batch {mirror.BATCH_SIZE}, {mirror.WORKERS} writer threads, conditional PutItem each)"
        )
        result = mirror.verify()
        print(f"  verify: {result.checked} items checked, {len(result.differences)} differences")
    finally:
        process.kill()
        process.wait(10)
        dispose_engines()


if __name__ == "__main__":
    main()
