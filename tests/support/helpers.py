"""Test helpers shared by every layer: ports, users, the PostgreSQL test cluster."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from cnop_app.db import dispose_engines, read_engine, write_engine, write_session
from cnop_app.manage import migrate

STRONG_PASSWORD = "Correct-Horse-42"
# Set by `make test`, which starts a throwaway PostgreSQL cluster (tests/support/pg_cluster.sh).
PG_ADMIN_URL = os.environ.get("CNOP_TEST_DATABASE_URL", "")
DB_BACKENDS = ["sqlite", "postgresql"] if PG_ADMIN_URL else ["sqlite"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def user_payload(username: str = "alice_01", **overrides: Any) -> dict[str, Any]:
    data = {
        "username": username,
        "email": f"{username}@example.com",
        "password": STRONG_PASSWORD,
        "first_name": "Alice",
        "last_name": "Smith",
    }
    data.update(overrides)
    return data


def register_and_login(client: TestClient, username: str = "alice_01") -> dict[str, str]:
    """Register a user through the API and return its Authorization header."""
    response = client.post("/api/v1/auth/register", json=user_payload(username))
    assert response.status_code == 201, response.text
    response = client.post("/api/v1/auth/login", json={"username": username, "password": STRONG_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, migrated database on the test cluster; dropped afterwards."""
    name = "cnop_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        migrate(url)
        yield url
    finally:
        dispose_engines()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RedisServer:
    """A private redis-server (no persistence) on its own port, which a test may stop and start again."""

    def __init__(self, workdir: Path) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server is not installed: run `make setup-test`")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._command = [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._command += ["--dir", str(workdir)]
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(self._command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        ping = ["redis-cli", "-p", str(self.port), "ping"]
        while subprocess.run(ping, capture_output=True).stdout.strip() != b"PONG":
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None


@contextmanager
def executed_on(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement `engine` sends while the block runs, with its parameters, in order."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextmanager
def statements_on(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement `engine` sends while the block runs, in order (filled when it ends)."""
    statements: list[str] = []
    with executed_on(engine) as seen:
        yield statements
    statements.extend(statement for statement, _ in seen)


# A second process that holds an SQLite database's write lock until its stdin closes.
_HOLD_WRITE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


@contextmanager
def sqlite_write_lock_in_another_process(database_url: str) -> Iterator[None]:
    """Another process holds the write lock of this SQLite database while the block runs."""
    path = database_url.removeprefix("sqlite:///")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITE_LOCK, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        if holder.stdin is not None:
            holder.stdin.close()
        holder.wait(10)


@contextmanager
def statement_threads() -> Iterator[list[tuple[str, str]]]:
    """(thread name, statement) of every statement either engine sends while the block runs."""
    seen: list[tuple[str, str]] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append((threading.current_thread().name, statement))

    engines = {read_engine(), write_engine()}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


@contextmanager
def another_thread_writing() -> Iterator[None]:
    """A thread of this process holds the writer while the block runs (a refresh writing, say)."""
    writing, release = threading.Event(), threading.Event()

    def hold() -> None:
        with write_session():
            writing.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert writing.wait(5)
        yield
    finally:
        release.set()
        holder.join(10)
