"""A real local HTTP server speaking CoinGecko's `/api/v3/coins/markets`, for tests and the bench.

Recorded-shape fixtures: the bundled snapshot is a `/coins/markets` response, so the default reply is
exactly what the feed returns (optionally grown to 250 coins). Tests script the next replies:
429 with Retry-After, 500, slow, garbage, truncated bodies, missing fields, negative prices, duplicates.
It also serves files (coin logos) that tests put in `files` (`serve_file`).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cnop_app.config import reset_settings
from cnop_app.services import market

SNAPSHOT = Path(__file__).resolve().parents[2] / "assets" / "market_snapshot.json"


def recorded_coins() -> list[dict[str, Any]]:
    """The recorded `/coins/markets` items (a fresh deep copy each call)."""
    return json.loads(SNAPSHOT.read_text())


def many_coins(count: int = 250) -> list[dict[str, Any]]:
    """`count` coins in the recorded shape: the real ones, then variants with their own ids and symbols."""
    base = recorded_coins()
    coins = list(base)
    n = 0
    while len(coins) < count:
        src = copy.deepcopy(base[n % len(base)])
        n += 1
        src["id"] = f"{src['id']}-v{n}"
        src["symbol"] = f"x{n}{src['symbol']}"[:10]
        src["name"] = f"{src['name']} V{n}"
        src["market_cap"] = max(1, src["market_cap"] // (10 + n))
        coins.append(src)
    for rank, coin in enumerate(coins, 1):
        coin["market_cap_rank"] = rank
    return coins


@dataclass
class Reply:
    """One scripted answer. body None = the current coins as JSON."""

    status: int = 200
    body: bytes | None = None
    coins: list[dict[str, Any]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate: bool = False  # announce the full length, send half, close


@dataclass
class SeenRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up mid-response (timeouts under test) are expected, not errors to print."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class FakeCoinGecko:
    def __init__(self, coins: list[dict[str, Any]] | None = None) -> None:
        self.coins = coins if coins is not None else recorded_coins()
        self.requests: list[SeenRequest] = []
        self.files: dict[str, Reply] = {}
        self._script: list[Reply] = []
        self.default = Reply()
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-coingecko", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/v3"

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def serve_file(self, path: str, body: bytes, content_type: str, status: int = 200, **headers: str) -> str:
        """Answer GET `path` with `body` (every time); returns its URL."""
        self.files[path] = Reply(status=status, body=body, headers={"Content-Type": content_type, **headers})
        return self.origin + path

    def push(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, then with `default`."""
        with self._lock:
            self._script.extend(replies)

    @property
    def hits(self) -> int:
        with self._lock:
            return len(self.requests)

    def start(self) -> FakeCoinGecko:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeCoinGecko:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _next(self) -> Reply:
        with self._lock:
            return self._script.pop(0) if self._script else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                with fake._lock:
                    fake.requests.append(
                        SeenRequest(url.path, query, {k.lower(): v for k, v in self.headers.items()}, time.time())
                    )
                if url.path in fake.files:
                    file = fake.files[url.path]
                    self._send(file.status, file.body or b"", file.headers)
                    return
                if url.path != "/api/v3/coins/markets":
                    self._send(404, b'{"error":"not found"}', {})
                    return
                reply = fake._next()
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body
                if body is None:
                    coins = reply.coins if reply.coins is not None else fake.coins
                    per_page = int(query.get("per_page", "100"))
                    body = json.dumps(coins[:per_page]).encode()
                self._send(reply.status, body, reply.headers, reply.truncate)

            def _send(self, status: int, body: bytes, headers: dict[str, str], truncate: bool = False) -> None:
                self.send_response(status)
                if "Content-Type" not in headers:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if truncate:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        return Handler


@pytest.fixture
def fake_coingecko(cnop_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCoinGecko]:
    """A running fake feed, with CNOP configured to use it (source coingecko, small back-off)."""
    with FakeCoinGecko() as server:
        monkeypatch.setenv("CNOP_MARKET_SOURCE", "coingecko")
        monkeypatch.setenv("CNOP_COINGECKO_BASE_URL", server.base_url)
        monkeypatch.setenv("CNOP_COINGECKO_API_KEY", "demo-key-123")
        monkeypatch.setenv("CNOP_REFRESH_ACTIVE_SECONDS", "1")
        reset_settings()
        market.clear_cache()
        yield server
    market.clear_cache()
