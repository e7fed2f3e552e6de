"""Order throughput: N concurrent HTTP clients placing market orders against a running CNOP.

    .venv/bin/python bench/orders.py                       # against http://127.0.0.1:3000 (make run)
    .venv/bin/python bench/orders.py --url http://127.0.0.1:8080 --clients 16 --duration 15
    .venv/bin/python bench/orders.py --start               # starts the REST API alone (granian) on a temp DB

Each client registers its own user, deposits cash, then alternates market buys and sells of a small
quantity of one asset for the given duration over one keep-alive connection. Prints orders/s, latency
percentiles, the backend's RSS (when the server is local) and the floor: the same writes per order
(account read and update, order, ledger entry, holding upsert, fill) done with raw `sqlite3` in one
process, in one transaction per order, on the same schema.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from decimal import ROUND_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cnop_app.manage import migrate

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Bench-Password-42!"
BENCH_ASSET = "BENCH"


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.https = parsed.scheme == "https"
        self.conn = self._connect()
        self.headers: dict[str, str] = {"Content-Type": "application/json"}

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=30)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        payload = json.dumps(body) if body is not None else None
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=payload, headers=self.headers)
                response = self.conn.getresponse()
                data = response.read()
                return response.status, json.loads(data) if data else None
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = self._connect()
                if attempt:
                    raise
        raise AssertionError("unreachable")


def setup_user(url: str, index: int, run_id: str, deposit: str) -> Client:
    client = Client(url)
    username = f"bench_{run_id}_{index}"
    status, body = client.request(
        "POST",
        "/api/v1/auth/register",
        {
            "username": username,
            "email": f"{username}@example.com",
            "password": PASSWORD,
            "first_name": "Bench",
            "last_name": "User",
        },
    )
    if status != 201:
        raise SystemExit(f"register failed: {status} {body}")
    status, body = client.request("POST", "/api/v1/auth/login", {"username": username, "password": PASSWORD})
    if status != 200:
        raise SystemExit(f"login failed: {status} {body}")
    client.headers["Authorization"] = f"Bearer {body['access_token']}"
    status, body = client.request("POST", "/api/v1/balance/deposit", {"amount": deposit})
    if status != 201:
        raise SystemExit(f"deposit failed: {status} {body}")
    return client


def pick_asset(url: str, wanted: str | None) -> tuple[str, str]:
    client = Client(url)
    if wanted:
        status, body = client.request("GET", f"/api/v1/inventory/assets/{wanted}")
        if status != 200:
            raise SystemExit(f"asset {wanted}: {status} {body}")
        return wanted, str(body["data"]["price_usd"])
    status, body = client.request("GET", "/api/v1/inventory/assets?active_only=true&limit=250")
    if status != 200:
        raise SystemExit(f"asset list failed: {status} {body}")
    priced = [a for a in body["data"] if a.get("price_usd") and a.get("is_active")]
    if not priced:
        raise SystemExit("no active asset with a price: seed the market first")
    # A mid-priced asset: small orders stay well under the order value limit.
    priced.sort(key=lambda a: abs(Decimal(str(a["price_usd"])) - 50))
    return priced[0]["asset_id"], str(priced[0]["price_usd"])


def quantity_for(price: str) -> str:
    """About $5 worth, at least 0.001, at most 8 decimals."""
    value = max(Decimal(5) / Decimal(price), Decimal("0.001")).quantize(Decimal("1e-8"), rounding=ROUND_UP)
    return format(value.normalize(), "f")


def run_clients(
    clients: list[Client], asset: str, quantity: str, duration: float
) -> tuple[list[float], int, dict[int, int]]:
    latencies: list[list[float]] = [[] for _ in clients]
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    start_barrier = threading.Barrier(len(clients) + 1)
    stop_at = [0.0]

    def loop(index: int) -> None:
        client = clients[index]
        mine = latencies[index]
        seen: dict[int, int] = {}
        side = 0
        start_barrier.wait()
        while time.perf_counter() < stop_at[0]:
            order_type = "market_buy" if side == 0 else "market_sell"
            began = time.perf_counter()
            status, _ = client.request(
                "POST", "/api/v1/orders", {"order_type": order_type, "asset_id": asset, "quantity": quantity}
            )
            mine.append(time.perf_counter() - began)
            seen[status] = seen.get(status, 0) + 1
            if status == 201:
                side ^= 1
        with lock:
            for code, count in seen.items():
                statuses[code] = statuses.get(code, 0) + count

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + duration
    start_barrier.wait()
    for thread in threads:
        thread.join()
    flat = [x for per in latencies for x in per]
    return flat, statuses.get(201, 0), statuses


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


# ---------------------------------------------------------------- backend memory


def _listen_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def listening_pids(port: int) -> list[int]:
    targets = {f"socket:[{inode}]" for inode in _listen_inodes(port)}
    pids = []
    if not targets:
        return pids
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in targets:
                    pids.append(int(entry.name))
                    break
        except OSError:
            continue
    return sorted(pids)


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80].strip()
    except OSError:
        return "?"


# ---------------------------------------------------------------- the raw sqlite3 floor


def sqlite_floor(orders: int) -> tuple[float, int]:
    """The same writes per order in one process with raw sqlite3 (WAL, synchronous=NORMAL, as the app)."""
    workdir = Path(tempfile.mkdtemp(prefix="cnop-floor-"))
    try:
        path = workdir / "floor.db"
        migrate(f"sqlite:///{path}")
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
        db.execute(
            "INSERT INTO accounts (username, cash, held, version, updated_at) VALUES ('floor', '1000000', '0', 0, ?)",
            (now,),
        )
        price, quantity = "50", "0.1"
        started = time.perf_counter()
        for i in range(orders):
            buy = i % 2 == 0
            order_id = str(uuid.uuid4())
            db.execute("BEGIN IMMEDIATE")
            cash, _held, version = db.execute(
                "SELECT cash, held, version FROM accounts WHERE username = 'floor'"
            ).fetchone()
            row = db.execute("SELECT quantity FROM holdings WHERE username = 'floor' AND asset_id = 'BENCH'").fetchone()
            owned = Decimal(row[0]) if row else Decimal(0)
            amount = Decimal(5) if buy else Decimal(-5)
            new_cash = str(Decimal(cash) - amount)
            db.execute(
                "INSERT INTO orders (order_id, username, asset_id, order_type, status, quantity, executed_price,"
                " total_amount, fee, held_amount, created_at, updated_at, completed_at)"
                " VALUES (?, 'floor', 'BENCH', ?, 'completed', ?, ?, '5.00', '0', '0', ?, ?, ?)",
                (order_id, "market_buy" if buy else "market_sell", quantity, price, now, now, now),
            )
            db.execute(
                "INSERT INTO ledger_entries (transaction_id, username, entry_type, amount, balance_after, reference,"
                " description, created_at) VALUES (?, 'floor', ?, ?, ?, ?, '', ?)",
                (str(uuid.uuid4()), "order_payment" if buy else "order_sale", str(-amount), new_cash, order_id, now),
            )
            db.execute(
                "UPDATE accounts SET cash = ?, version = ?, updated_at = ? WHERE username = 'floor'",
                (new_cash, version + 1, now),
            )
            new_qty = str(owned + (Decimal(quantity) if buy else -Decimal(quantity)))
            db.execute(
                "INSERT INTO holdings (username, asset_id, quantity, held_quantity, average_cost, realized_pnl,"
                " version, created_at, updated_at) VALUES ('floor', 'BENCH', ?, '0', ?, '0', 0, ?, ?)"
                " ON CONFLICT (username, asset_id) DO UPDATE SET quantity = excluded.quantity,"
                " version = holdings.version + 1, updated_at = excluded.updated_at",
                (new_qty, price, now, now),
            )
            db.execute(
                "INSERT INTO asset_transactions (username, asset_id, order_id, transaction_type, quantity, price,"
                " total_amount, fee, status, created_at) VALUES ('floor', 'BENCH', ?, ?, ?, ?, '5.00', '0',"
                " 'completed', ?)",
                (order_id, "BUY" if buy else "SELL", quantity, price, now),
            )
            db.execute("COMMIT")
        elapsed = time.perf_counter() - started
        db.close()
        return orders / elapsed, orders
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- --start: the REST API alone


def start_api(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """Migrate a fresh database, add a priced asset, and serve `create_api()` with granian (1 worker)."""
    env = {
        **os.environ,
        "CNOP_DATA_DIR": str(workdir),
        "CNOP_ENV": "development",
        "CNOP_LOG_LEVEL": "WARNING",
        "CNOP_MARKET_SOURCE": "snapshot",
        "CNOP_RUN_SCHEDULER": "false",
    }
    python = sys.executable
    subprocess.run([python, "-m", "cnop_app.manage", "migrate"], cwd=ROOT, env=env, check=True)
    db = sqlite3.connect(workdir / "cnop.db")
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    db.execute(
        "INSERT INTO assets (id, name, description, category, is_active, price_usd, market_cap_rank, sparkline_7d,"
        " source, updated_at) VALUES (?, 'Bench coin', '', 'crypto', 1, '50', 1, '[]', 'simulated', ?)",
        (BENCH_ASSET, now),
    )
    db.commit()
    db.close()
    granian = str(Path(python).parent / "granian")
    proc = subprocess.Popen(
        [
            granian,
            "--interface",
            "asgi",
            "--factory",
            "cnop_app.api:create_api",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the API did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of order placing")
    parser.add_argument("--asset", default=None, help="asset id (default: a priced active asset near $50)")
    parser.add_argument("--deposit", default="5000")
    parser.add_argument("--floor-orders", type=int, default=20000, help="orders for the raw sqlite3 floor")
    parser.add_argument("--start", action="store_true", help="start the REST API alone (granian) on a temp DB")
    args = parser.parse_args()

    proc = None
    workdir = None
    url = args.url
    try:
        if args.start:
            sock_port = _free_port()
            workdir = Path(tempfile.mkdtemp(prefix="cnop-bench-"))
            proc = start_api(sock_port, workdir)
            url = f"http://127.0.0.1:{sock_port}"
            args.asset = args.asset or BENCH_ASSET
        asset, price = pick_asset(url, args.asset)
        quantity = quantity_for(price)
        run_id = uuid.uuid4().hex[:6]
        print(f"target {url}: {args.clients} clients, {args.duration:.0f}s, orders of {quantity} {asset} @ ~{price}")
        clients = [setup_user(url, i, run_id, args.deposit) for i in range(args.clients)]
        port = urlparse(url).port or 80
        local = urlparse(url).hostname in ("127.0.0.1", "localhost", "::1")
        pids = listening_pids(port) if local else []
        rss_before = {pid: rss_kib(pid) for pid in pids}
        latencies, ok, statuses = run_clients(clients, asset, quantity, args.duration)
        rss_after = {pid: rss_kib(pid) for pid in pids}
        print(f"orders placed: {ok} in {args.duration:.1f}s -> {ok / args.duration:.0f} orders/s")
        print(f"status codes: {dict(sorted(statuses.items()))}")
        print(
            "latency ms: p50 {:.1f}  p95 {:.1f}  p99 {:.1f}  max {:.1f}  mean {:.1f}".format(
                percentile(latencies, 50) * 1000,
                percentile(latencies, 95) * 1000,
                percentile(latencies, 99) * 1000,
                max(latencies) * 1000 if latencies else float("nan"),
                statistics.fmean(latencies) * 1000 if latencies else float("nan"),
            )
        )
        if pids:
            for pid in pids:
                print(f"backend RSS pid {pid}: {rss_before[pid]} -> {rss_after[pid]} KiB  ({process_name(pid)})")
        else:
            print("backend RSS: n/a (server not local or its socket not visible)")
        floor_rate, floor_n = sqlite_floor(args.floor_orders)
        print(f"floor (raw sqlite3, one process, one transaction per order): {floor_rate:.0f} orders/s over {floor_n}")
        return 0 if statuses.get(201, 0) and set(statuses) == {201} else 1
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
