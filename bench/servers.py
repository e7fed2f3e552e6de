"""The servers a bench runs against, each on its own free loopback port and stopped afterwards.

- `make_run_app`: the whole app started the way `make run` starts it (tests/support/app_server.py).
- `backend_instance`: `deploy/entrypoint.sh serve` (backend only, as the image runs it), optionally
  pinned to one core with `taskset`; with Redis and PostgreSQL it runs several workers.
- `redis_server`, `postgres_database`, `moto`, `price_feed`: throwaway dependencies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.common import NO_RATE_LIMIT, ROOT, VENV_BIN, free_port, group_pids, listening_pids, pgid_of, wait_for
from tests.support.app_server import clean_env, running_app
from tests.support.coingecko_server import FakeCoinGecko, many_coins, recorded_coins
from tests.support.helpers import RedisServer
from tests.support.moto_server import MotoServer

ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
PG_CLUSTER = ROOT / "tests" / "support" / "pg_cluster.sh"
STATIC_SECONDS = "3600"  # a refresh interval longer than any bench: prices stay as first stored


@dataclass
class App:
    base: str
    port: int
    pgid: int
    database_url: str
    data_dir: Path
    log: Path | None = None

    def pids(self) -> list[int]:
        """Every live process of the server (supervisor and workers)."""
        return group_pids(self.pgid)

    def worker_pids(self) -> list[int]:
        """The processes holding the listening socket (gunicorn's master and its workers)."""
        return listening_pids(self.port) or self.pids()


@contextmanager
def price_feed(coins: int = 100) -> Iterator[FakeCoinGecko]:
    """The local CoinGecko-format feed serving the recorded snapshot grown to `coins` coins."""
    with FakeCoinGecko(many_coins(coins) if coins > 52 else recorded_coins()[:coins]) as feed:
        yield feed


def feed_env(feed: FakeCoinGecko, coins: int, interval: str = STATIC_SECONDS) -> dict[str, str]:
    return {
        "CNOP_MARKET_SOURCE": "coingecko",
        "CNOP_COINGECKO_BASE_URL": feed.base_url,
        "CNOP_MARKET_COINS": str(coins),
        "CNOP_REFRESH_ACTIVE_SECONDS": interval,
        "CNOP_REFRESH_IDLE_SECONDS": interval,
    }


def _catalogue_has(base: str, coins: int) -> bool:
    reply = httpx.get(f"{base}/api/v1/inventory/assets", params={"limit": 100}, timeout=5)
    return reply.status_code == 200 and len(reply.json()["data"]) >= min(coins, 100)


@contextmanager
def make_run_app(work: Path, extra_env: dict[str, str], coins: int = 0) -> Iterator[App]:
    """The app as `make run` starts it (migrate, seed, `reflex run --env prod`), SQLite in `work`."""
    data_dir = work / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**NO_RATE_LIMIT, "CNOP_LOG_JSON": "false", **extra_env}
    with running_app(data_dir, port, env) as base:
        pids = listening_pids(port)
        pgid = pgid_of(pids[0]) if pids else None
        if pgid is None:
            raise RuntimeError("cannot find the app's processes")
        if coins:
            wait_for(lambda: _catalogue_has(base, coins), 60, f"{coins} coins in the catalogue")
        yield App(base, port, pgid, f"sqlite:///{data_dir / 'cnop.db'}", data_dir, data_dir / "app.log")


def _backend_env(work: Path, port: int, extra: dict[str, str]) -> dict[str, str]:
    env = clean_env(
        CNOP_PORT=str(port),
        CNOP_DATA_DIR=str(work / "data"),
        CNOP_ENV="development",
        CNOP_MARKET_SOURCE="snapshot",
        CNOP_LOG_LEVEL="WARNING",
        CNOP_LOG_JSON="false",
        CNOP_BACKEND_HOST="127.0.0.1",
        REFLEX_DIR=str(work / "reflex"),
        REFLEX_WEB_WORKDIR=str(work / "web"),
        REFLEX_STATES_WORKDIR=str(work / "states"),
        REFLEX_TELEMETRY_ENABLED="false",
        REFLEX_CHECK_LATEST_VERSION="false",
        **NO_RATE_LIMIT,
    )
    env.update(extra)
    return env


@contextmanager
def backend_instance(
    work: Path, extra_env: dict[str, str], workers: int = 1, core: int | None = None, coins: int = 0
) -> Iterator[App]:
    """`deploy/entrypoint.sh migrate`, then `serve` (backend only); `core`: pinned there with taskset."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = _backend_env(work, port, extra_env)
    if workers > 1:
        env["WEB_CONCURRENCY"] = str(workers)
    setup = subprocess.run([str(ENTRYPOINT), "migrate"], env=env, capture_output=True, text=True, timeout=300)
    if setup.returncode:
        raise RuntimeError(f"migrate failed:\n{setup.stdout[-2000:]}{setup.stderr[-2000:]}")
    command = [str(ENTRYPOINT), "serve"]
    if core is not None:
        command = ["taskset", "-c", str(core), *command]
    log = work / "backend.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"backend exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            return httpx.get(f"{base}/health", timeout=2).status_code == 200

        wait_for(up, 180, "the backend's /health")
        if coins:
            wait_for(lambda: _catalogue_has(base, coins), 60, f"{coins} coins in the catalogue")
        database_url = env.get("CNOP_DATABASE_URL") or f"sqlite:///{work / 'data' / 'cnop.db'}"
        yield App(base, port, proc.pid, database_url, work / "data", log)
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen[Any], timeout: float = 20) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            proc.wait()


@contextmanager
def redis_server(work: Path) -> Iterator[tuple[str, int]]:
    """A throwaway redis-server (no persistence) on a free port: (url, port)."""
    work.mkdir(parents=True, exist_ok=True)
    server = RedisServer(work)
    server.start()
    try:
        yield server.url, server.port
    finally:
        server.stop()


@contextmanager
def postgres_database() -> Iterator[tuple[str, int]]:
    """A new, empty database: on CNOP_TEST_DATABASE_URL's server, else on a throwaway cluster started here.

    Yields (SQLAlchemy URL, server port); the app's `migrate` creates the schema."""
    admin = os.environ.get("CNOP_TEST_DATABASE_URL", "")
    started = False
    if not admin:
        admin = subprocess.run(["bash", str(PG_CLUSTER), "start"], capture_output=True, text=True, check=True)
        admin, started = admin.stdout.strip().splitlines()[-1], True
    name = "cnop_bench_" + uuid.uuid4().hex[:10]
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base = admin.rsplit("/", 1)[0]
        port = int(base.rsplit(":", 1)[1])
        yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1), port
    finally:
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            if started:
                subprocess.run(["bash", str(PG_CLUSTER), "stop"], check=False)


@contextmanager
def moto(work: Path) -> Iterator[str]:
    """moto's DynamoDB server (not recording): its endpoint URL."""
    work.mkdir(parents=True, exist_ok=True)
    server = MotoServer(work, record=False)
    server.start()
    try:
        yield server.endpoint
    finally:
        server.stop()


def mirror_env(endpoint: str) -> dict[str, str]:
    return {
        "CNOP_DYNAMODB_ENDPOINT": endpoint,
        "CNOP_DYNAMODB_TABLE_PREFIX": "bench-",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


def create_mirror_tables(env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "cnop_app.mirror", "create-tables"],
        env=clean_env(**env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode:
        raise RuntimeError(f"mirror create-tables failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


class MovingFeed:
    """Moves `moved` of the feed's prices after each feed call, so every refresh stores that many new prices."""

    def __init__(self, feed: FakeCoinGecko, moved: int) -> None:
        self.feed = feed
        self.moved = moved
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="moving-feed", daemon=True)
        self._step = 0

    def __enter__(self) -> MovingFeed:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        seen = self.feed.hits
        while not self._stop.wait(0.05):
            if self.feed.hits == seen:
                continue
            seen = self.feed.hits
            self._step += 1
            coins = [dict(c) for c in self.feed.coins]
            factor = 1.002 if self._step % 2 else 1 / 1.002
            for coin in coins[: self.moved]:
                coin["current_price"] = round(coin["current_price"] * factor, 8)
            self.feed.coins = coins
            time.sleep(0)
