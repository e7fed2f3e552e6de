"""RSS per open websocket of the ASGI server itself: the server CNOP runs on (gunicorn with CNOP's uvicorn
worker, `cnop_app/server.py`) serving a bare ASGI app (no Reflex, no CNOP code).

The fan-out bench's memory row is CNOP's whole cost per browser; this one is the share of it that the
server takes before any Python code of the app runs: N clients open a websocket, receive one frame and
stay; the server's RSS is read before, while they are connected and after they closed.

    PYTHONPATH=. .venv/bin/python bench/ws_memory.py [N]
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websockets

if __package__ in (None, ""):  # `python bench/ws_memory.py`: make `bench` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, free_port, group_pids, rss_kib, wait_for
from cnop_app.server import WORKER_CLASS


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The smallest ASGI app that holds websockets open: accept, send one frame, wait for the close."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "hello"})
        while (await receive())["type"] != "websocket.disconnect":
            pass


@dataclass(frozen=True)
class WsMemory:
    clients: int
    before_kib: int
    connected_kib: int
    after_kib: int

    @property
    def per_socket_kib(self) -> float:
        return (self.connected_kib - self.before_kib) / self.clients


async def _hold(port: int, pgid: int, clients: int) -> WsMemory:
    before = rss_kib(group_pids(pgid))
    sockets = []
    for _ in range(clients):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/", compression=None)
        await ws.recv()
        sockets.append(ws)
    await asyncio.sleep(1)
    connected = rss_kib(group_pids(pgid))
    for ws in sockets:
        await ws.close()
    await asyncio.sleep(2)
    return WsMemory(clients, before, connected, rss_kib(group_pids(pgid)))


def measure(clients: int) -> WsMemory:
    """Start the server on the bare app, hold `clients` websockets open, close them; its RSS each time."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "gunicorn", "--worker-class", WORKER_CLASS),
        *("--bind", f"127.0.0.1:{port}", "bench.ws_memory:app"),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: _serving(port), 30, "the server")
        time.sleep(1)  # its worker settles
        return asyncio.run(_hold(port, server.pid, clients))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _serving(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def main() -> None:
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    r = measure(clients)
    print(
        f"gunicorn with CNOP's worker, bare ASGI app: RSS {r.before_kib // 1024} -> {r.connected_kib // 1024} MB "
        f"with {clients} websockets "
        f"({r.per_socket_kib:.0f} KB each), {r.after_kib // 1024} MB after they closed"
    )


if __name__ == "__main__":
    main()
