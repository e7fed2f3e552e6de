"""Two CNOP instances, two workers each, on one PostgreSQL and one Redis, behind nginx: one deployment.

Started as the image starts them (`deploy/entrypoint.sh serve`, backend only; the frontend exported
once and served by nginx), with a local CoinGecko-format feed refreshing every 3 s and the DynamoDB
mirror on (moto's server). Runs with the browser tests (alone): it starts a whole deployment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page
from sqlmodel import select

from cnop_app.config import reset_settings
from cnop_app.db import dispose_engines, read_session
from cnop_app.models import Lease, Order
from tests.deploy.support import ENTRYPOINT, app_env, clean_env, nginx, process, run, wait_http, world_readable_dir
from tests.support.coingecko_server import FakeCoinGecko
from tests.support.helpers import (
    PG_ADMIN_URL,
    STRONG_PASSWORD,
    RedisServer,
    free_port,
    fresh_postgres_database,
    user_payload,
)
from tests.support.moto_server import MotoServer
from tests.support.trading_fixtures import check_invariants

# Marked `browser` by tests/browser/conftest.py (run alone, after the rest); it shares its Chromium.
pytestmark = [pytest.mark.postgres]

INTERVAL = 3
WORKERS = 2
SECRET = "multi-instance-secret-" + "x" * 40


@dataclass
class Instance:
    name: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Deployment:
    url: str
    instances: list[Instance]
    feed: FakeCoinGecko
    moto: MotoServer
    database_url: str
    nginx_log: Path
    env: dict[str, str]
    stack: ExitStack = field(repr=False)

    def mirror_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(
            [str(ENTRYPOINT.parent.parent / ".venv" / "bin" / "python"), "-m", "cnop_app.mirror", *args],
            env=self.env,
            cwd=ENTRYPOINT.parent.parent,
        )

    def upstream_of(self, cookie: str) -> str:
        """Which backend nginx sends this browser's websocket to (read from its access log)."""
        before = self.nginx_log.read_text(errors="replace").count("\n")
        httpx.get(f"{self.url}/_event/?EIO=4&transport=polling", cookies={"cnop_route": cookie}, timeout=5)
        for _ in range(50):
            lines = self.nginx_log.read_text(errors="replace").splitlines()[before:]
            for line in lines:
                if "/_event/" in line and line.startswith("{"):
                    return json.loads(line)["upstream"]
            time.sleep(0.05)
        raise AssertionError("no access-log line for the websocket request")


def _start(instance: Instance, stack: ExitStack) -> None:
    instance.proc = stack.enter_context(process([str(ENTRYPOINT), "serve"], instance.env, instance.log))
    wait_http(f"{instance.url}/health", instance.proc, instance.log, timeout=120)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if not PG_ADMIN_URL:
        pytest.fail("CNOP_TEST_DATABASE_URL is not set: run the tests with `make test` (it starts PostgreSQL)")
    work = tmp_path_factory.mktemp("multi")
    proxy_port = free_port()
    public_url = f"http://127.0.0.1:{proxy_port}"
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_postgres_database())
        (work / "redis").mkdir()
        redis = RedisServer(work / "redis")
        redis.start()
        stack.callback(redis.stop)
        feed = stack.enter_context(FakeCoinGecko())
        (work / "moto").mkdir()
        moto = MotoServer(work / "moto", record=False)
        moto.start()
        stack.callback(moto.stop)
        common = {
            "CNOP_DATABASE_URL": database_url,
            "CNOP_REDIS_URL": redis.url,
            "CNOP_JWT_SECRET": SECRET,
            "CNOP_PUBLIC_URL": public_url,
            "CNOP_MARKET_SOURCE": "coingecko",
            "CNOP_COINGECKO_BASE_URL": feed.base_url,
            "CNOP_REFRESH_ACTIVE_SECONDS": str(INTERVAL),
            "CNOP_REFRESH_IDLE_SECONDS": str(INTERVAL),
            "CNOP_DYNAMODB_ENDPOINT": moto.endpoint,
            "CNOP_DYNAMODB_TABLE_PREFIX": "multi-",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "CNOP_LOG_LEVEL": "WARNING",
            "CNOP_TRUSTED_PROXIES": "127.0.0.1",
            "WEB_CONCURRENCY": str(WORKERS),
            # Every client here is one address (127.0.0.1): the per-IP rate limits would refuse the
            # load this test needs. Rate limits across instances are tested in tests/api.
            "CNOP_RATE_LIMIT_ENABLED": "false",
        }
        setup_env = {**app_env(work / "setup", free_port()), **common}
        assert run([str(ENTRYPOINT), "migrate"], env=setup_env).returncode == 0
        shared = stack.enter_context(world_readable_dir("cnop-multi-"))
        stack.callback(shutil.rmtree, work / "setup" / "web", True)
        exported = run([str(ENTRYPOINT), "export-frontend", str(shared / "site")], env=setup_env, cwd=work)
        assert exported.returncode == 0, exported.stdout[-3000:] + exported.stderr[-3000:]
        shutil.rmtree(work / "setup" / "web", ignore_errors=True)
        deployment_env = dict(setup_env)
        created = subprocess.run(
            [str(Path(ENTRYPOINT).parents[1] / ".venv" / "bin" / "python"), "-m", "cnop_app.mirror", "create-tables"],
            env=deployment_env,
            cwd=ENTRYPOINT.parent.parent,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert created.returncode == 0, created.stderr
        instances = []
        for name in ("one", "two"):
            port = free_port()
            instance = Instance(name, port, {**app_env(work / name, port), **common}, work / f"{name}.log")
            _start(instance, stack)
            instances.append(instance)
        proxy_env = clean_env(
            CNOP_BACKENDS=",".join(f"127.0.0.1:{i.port}" for i in instances),
            CNOP_STATIC_ROOT=str(shared / "site"),
            CNOP_PROXY_PORT=str(proxy_port),
            CNOP_FAIL_TIMEOUT="3s",
        )
        proxy = stack.enter_context(nginx(shared, proxy_env))
        wait_http(f"{public_url}/health", proxy, shared / "nginx.log", timeout=30)
        yield Deployment(public_url, instances, feed, moto, database_url, shared / "nginx.log", deployment_env, stack)


@pytest.fixture
def on_deployment_db(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This test process reads the deployment's database directly (invariants, acknowledged orders)."""
    monkeypatch.setenv("CNOP_DATABASE_URL", deployment.database_url)
    monkeypatch.setenv("CNOP_DATA_DIR", str(Path(deployment.env["CNOP_DATA_DIR"])))
    monkeypatch.setenv("CNOP_JWT_SECRET", SECRET)
    reset_settings()
    dispose_engines()
    yield
    dispose_engines()
    reset_settings()


def _register(base: str, username: str, cash: str = "5000") -> dict[str, str]:
    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.post("/api/v1/auth/register", json=user_payload(username)).status_code == 201
        token = http.post("/api/v1/auth/login", json={"username": username, "password": STRONG_PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        if cash != "0":
            moved = http.post("/api/v1/balance/deposit", json={"amount": cash}, headers=headers)
            assert moved.status_code == 201, moved.text
    return headers


def _workers(instance: Instance) -> int:
    assert instance.proc is not None
    found = subprocess.run(["pgrep", "-g", str(instance.proc.pid)], capture_output=True, text=True).stdout.split()
    return len(found)


def _holders(name: str) -> set[str]:
    with read_session() as session:
        lease = session.exec(select(Lease).where(Lease.name == name)).first()
    return {lease.holder} if lease is not None else set()


def test_each_instance_runs_several_workers(deployment: Deployment) -> None:
    for instance in deployment.instances:
        # entrypoint -> reflex (supervisor) -> gunicorn master -> workers: at least WORKERS + 1 processes in the group
        assert _workers(instance) >= WORKERS + 1, instance.name


def test_exactly_one_refresh_per_interval_and_one_drainer(deployment: Deployment, on_deployment_db: None) -> None:
    seconds = 30
    before = deployment.feed.hits
    drainers: set[str] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        drainers |= _holders("mirror_drainer")
        time.sleep(1)
    calls = deployment.feed.hits - before
    print(f"feed calls in {seconds} s with 2 instances x {WORKERS} workers at a {INTERVAL} s interval: {calls}")
    # One refresher for the deployment: ~seconds / INTERVAL calls. Each of the 4 workers refreshing on its
    # own would make ~4x that (the landed main made 20 in 30 s with one instance of several workers).
    assert seconds // INTERVAL - 2 <= calls <= seconds // INTERVAL + 1
    assert len(drainers) == 1, drainers


def _open_market(browser: Browser, deployment: Deployment, cookie: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    host = deployment.url.split("//", 1)[1].split(":")[0]
    context.add_cookies([{"name": "cnop_route", "value": cookie, "domain": host, "path": "/"}])
    page = context.new_page()
    page.goto(f"{deployment.url}/market")
    page.get_by_text("Bitcoin", exact=True).first.wait_for(timeout=30_000)
    return page


def _cookie_for(deployment: Deployment, instance: Instance) -> str:
    for i in range(200):
        cookie = f"browser-{i}"
        if deployment.upstream_of(cookie).endswith(f":{instance.port}"):
            return cookie
    raise AssertionError(f"no cookie routes to {instance.name}")


def _set_btc_price(feed: FakeCoinGecko, price: float) -> None:
    coins = [dict(c) for c in feed.coins]
    for coin in coins:
        if coin["symbol"].lower() == "btc":
            coin["current_price"] = price
    feed.coins = coins


def _shows(page: Page, text: str, timeout_ms: int = 20_000) -> None:
    page.get_by_text(text).first.wait_for(timeout=timeout_ms)


def test_a_refresh_reaches_browsers_on_every_instance(deployment: Deployment, browser: Browser) -> None:
    pages = [_open_market(browser, deployment, _cookie_for(deployment, i)) for i in deployment.instances]
    _set_btc_price(deployment.feed, 123456.78)
    for page in pages:
        _shows(page, "$123,456.78")
    for page in pages:
        page.context.close()


def _orders(base: str, headers: dict[str, str], count: int, results: list[tuple[int, str | None, float]]) -> None:
    with httpx.Client(base_url=base, timeout=30, headers=headers) as http:
        for i in range(count):
            side = "market_buy" if i % 2 == 0 else "market_sell"
            body = {"order_type": side, "asset_id": "ETH", "quantity": "0.001", "client_order_id": uuid.uuid4().hex}
            started = time.perf_counter()
            try:
                response = http.post("/api/v1/orders", json=body)
                order_id = response.json()["data"]["order_id"] if response.status_code == 201 else None
                results.append((response.status_code, order_id, time.perf_counter() - started))
            except httpx.HTTPError:
                results.append((0, None, time.perf_counter() - started))


def _load(base: str, users: list[dict[str, str]], per_user: int) -> tuple[list[tuple[int, str | None, float]], float]:
    results: list[tuple[int, str | None, float]] = []
    threads = [threading.Thread(target=_orders, args=(base, h, per_user, results)) for h in users]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - started


def _figures(label: str, results: list[tuple[int, str | None, float]], seconds: float) -> None:
    ok = sorted(r[2] for r in results if r[0] == 201)
    p99 = ok[max(0, int(len(ok) * 0.99) - 1)] if ok else float("nan")
    print(
        f"{label}: {len(ok)} orders in {seconds:.1f} s = {len(ok) / seconds:.0f} orders/s, "
        f"p50 {statistics.median(ok) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, errors {len(results) - len(ok)}"
    )


def test_orders_and_deposits_through_the_proxy_keep_every_invariant(
    deployment: Deployment, on_deployment_db: None, tmp_path: Path
) -> None:
    users = [_register(deployment.url, f"load_{i:04d}") for i in range(8)]
    for headers in users:  # something to sell
        with httpx.Client(base_url=deployment.url, headers=headers, timeout=30) as http:
            buy = {"order_type": "market_buy", "asset_id": "ETH", "quantity": "0.01"}
            assert http.post("/api/v1/orders", json=buy).status_code == 201

    # One instance behind its own proxy, then both behind the deployment's proxy (figures for the note).
    single = world_readable_dir("cnop-single-")
    with single as work:
        port = free_port()
        env = clean_env(
            CNOP_BACKENDS=f"127.0.0.1:{deployment.instances[0].port}",
            CNOP_STATIC_ROOT=str(work),
            CNOP_PROXY_PORT=str(port),
        )
        with nginx(work, env) as proxy:
            wait_http(f"http://127.0.0.1:{port}/health", proxy, work / "nginx.log", timeout=20)
            results, seconds = _load(f"http://127.0.0.1:{port}", users, 25)
            _figures("1 instance through the proxy", results, seconds)
            assert all(r[0] == 201 for r in results)
    results, seconds = _load(deployment.url, users, 25)
    _figures("2 instances through the proxy", results, seconds)
    assert all(r[0] == 201 for r in results)

    # The same Idempotency-Key sent to both instances at once executes once.
    headers = {**users[0], "Idempotency-Key": "dep-" + uuid.uuid4().hex}
    answers: list[httpx.Response] = []

    def deposit(instance: Instance) -> None:
        answers.append(
            httpx.post(f"{instance.url}/api/v1/balance/deposit", json={"amount": "12.34"}, headers=headers, timeout=30)
        )

    threads = [threading.Thread(target=deposit, args=(i,)) for i in deployment.instances for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["transaction_id"] for a in answers}) == 1
    check_invariants()


def test_a_token_revoked_on_one_instance_is_refused_by_the_other_at_once(deployment: Deployment) -> None:
    one, two = deployment.instances
    headers = _register(one.url, "revoke_001", cash="0")
    assert httpx.get(f"{two.url}/api/v1/balance", headers=headers).status_code == 200
    assert httpx.post(f"{one.url}/api/v1/auth/logout", headers=headers).status_code == 200
    assert httpx.get(f"{two.url}/api/v1/balance", headers=headers).status_code == 401


def test_killing_an_instance_under_load_loses_nothing(
    deployment: Deployment, on_deployment_db: None, browser: Browser
) -> None:
    one, two = deployment.instances
    page = _open_market(browser, deployment, _cookie_for(deployment, two))
    users = [_register(deployment.url, f"kill_{i:04d}") for i in range(6)]
    for headers in users:
        with httpx.Client(base_url=deployment.url, headers=headers, timeout=30) as http:
            assert (
                http.post(
                    "/api/v1/orders", json={"order_type": "market_buy", "asset_id": "ETH", "quantity": "0.01"}
                ).status_code
                == 201
            )
    results: list[tuple[int, str | None, float]] = []
    threads = [threading.Thread(target=_orders, args=(deployment.url, h, 40, results)) for h in users]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    assert two.proc is not None
    os.killpg(two.proc.pid, signal.SIGKILL)  # no goodbye: the worst case
    two.proc.wait()
    for thread in threads:
        thread.join()
    acknowledged = {r[1] for r in results if r[0] == 201}
    print(f"during the kill: {len(acknowledged)} acknowledged, {len(results) - len(acknowledged)} failed")
    with read_session() as session:
        stored = set(session.exec(select(Order.order_id).where(Order.order_id.in_(acknowledged))).all())
    assert acknowledged == stored  # every acknowledged order is in the database
    # The surviving instance keeps serving through the proxy.
    after, _ = _load(deployment.url, users[:2], 5)
    assert all(r[0] == 201 for r in after)
    check_invariants()
    # The browser that was on the killed instance reconnects (to the other one) and gets new prices.
    _set_btc_price(deployment.feed, 111111.11)
    _shows(page, "$111,111.11", timeout_ms=60_000)
    page.context.close()
    # The mirror catches up without the killed drainer (its lease expires) and matches SQL exactly.
    deadline = time.monotonic() + 150
    while True:
        verified = deployment.mirror_cli("verify")
        if verified.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]
    print("mirror verify after the kill:", verified.stdout.strip().splitlines()[-1:])


def test_sigterm_stops_an_instance_within_ten_seconds_and_keeps_what_it_acknowledged(
    deployment: Deployment, on_deployment_db: None
) -> None:
    one = deployment.instances[0]
    assert one.proc is not None and one.proc.poll() is None
    users = [_register(one.url, f"stop_{i:04d}") for i in range(4)]
    results: list[tuple[int, str | None, float]] = []
    threads = [threading.Thread(target=_orders, args=(one.url, h, 30, results)) for h in users]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    os.killpg(one.proc.pid, signal.SIGTERM)
    one.proc.wait(timeout=30)
    stopped = time.monotonic() - started
    for thread in threads:
        thread.join()
    print(f"SIGTERM to exit: {stopped:.1f} s")
    assert stopped < 10
    acknowledged = {r[1] for r in results if r[0] == 201}
    with read_session() as session:
        stored = set(session.exec(select(Order.order_id).where(Order.order_id.in_(acknowledged))).all())
    assert acknowledged == stored
    check_invariants()
