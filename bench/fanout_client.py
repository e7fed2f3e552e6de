"""N anonymous `/market` browsers replaying the browser's websocket handshake (bench/fanout.py runs it).

    python -m bench.fanout_client CONFIG.json

Each client opens `/_event/?token=<new uuid>&EIO=4&transport=websocket` with the browser's subprotocol
and permessage-deflate offer, answers Engine.IO's open packet with the CONNECT packet a real Chromium
sent (it carries the hydrate event), answers pings, and records every socket.io event frame it gets:
arrival time, text size and the bytes read from the socket so far (compressed, if deflate was agreed).
Clients start evenly over `ramp` seconds. Protocol with the runner (which watches the refreshes and
samples memory): prints `ALL_ROWS <time>` once every client has its first rows (or failed); then, on
stdin, `wait <time> <timeout>` prints `DONE <time>` once every client with rows has received a frame
after <time> (or after <timeout> seconds), and `close` closes every socket and writes the results to
CONFIG's `out` file. All times are `time.time()` (the runner's clock too). The clients run on uvloop: they
stand in for browsers on their own machines, so they should take as little of the server's CPU as they can.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedOK, WebSocketException


class CountingConnection(ClientConnection):
    """A client connection that counts the bytes read from its socket (what the network carried)."""

    wire = 0

    def data_received(self, data: bytes) -> None:
        self.wire += len(data)
        super().data_received(data)


@dataclass
class Client:
    index: int
    started: float = 0.0
    rows_at: float | None = None
    error: str | None = None
    extensions: str = ""
    frames: list[tuple[float, int, int]] = field(default_factory=list)  # (time, text size, wire bytes so far)
    ws: ClientConnection | None = None


async def run_client(client: Client, cfg: dict[str, Any], start_at: float, frame_seen: asyncio.Event) -> None:
    await asyncio.sleep(max(0.0, start_at - time.time()))
    client.started = time.time()
    url = cfg["url"].replace("{token}", str(uuid.uuid4()))
    try:
        async with connect(
            url,
            origin=cfg["origin"],
            subprotocols=[cfg["subprotocol"]] if cfg.get("subprotocol") else None,
            create_connection=CountingConnection,
            max_size=None,
            ping_interval=None,
            open_timeout=120,
            close_timeout=5,
            proxy=None,
            user_agent_header="cnop-bench",
        ) as ws:
            client.ws = ws
            client.extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "") if ws.response else ""
            async for message in ws:
                now = time.time()
                if isinstance(message, bytes):
                    continue
                if message == "2":  # Engine.IO ping
                    await ws.send("3")
                elif message.startswith("0{"):  # Engine.IO open: send the browser's CONNECT (hydrate)
                    await ws.send(cfg["connect"])
                elif message.startswith("42"):
                    client.frames.append((now, len(message), ws.wire))  # type: ignore[attr-defined]
                    if client.rows_at is None and cfg["rows_marker"] in message:
                        client.rows_at = now
                    frame_seen.set()
                elif message.startswith("44"):  # CONNECT refused
                    client.error = f"connect refused: {message[:200]}"
                    break
    except ConnectionClosedOK:
        pass  # closed at the end (a pong racing the close)
    except (TimeoutError, OSError, WebSocketException) as exc:
        client.error = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        frame_seen.set()


def _all_had_frame(clients: list[Client], after: float) -> bool:
    return all(c.frames and c.frames[-1][0] >= after for c in clients if c.rows_at is not None and c.error is None)


async def main(cfg: dict[str, Any]) -> dict[str, Any]:
    n, ramp = int(cfg["clients"]), float(cfg["ramp"])
    clients = [Client(i) for i in range(n)]
    frame_seen = asyncio.Event()
    first = time.time() + 0.2
    tasks = [asyncio.create_task(run_client(c, cfg, first + ramp * c.index / n, frame_seen)) for c in clients]
    deadline = time.time() + ramp + float(cfg.get("connect_timeout", 60))
    while time.time() < deadline:
        if all(c.rows_at is not None or c.error is not None for c in clients):
            break
        frame_seen.clear()
        try:
            await asyncio.wait_for(frame_seen.wait(), timeout=0.5)
        except TimeoutError:
            pass
    print(f"ALL_ROWS {time.time()}", flush=True)
    while True:
        command = (await asyncio.to_thread(sys.stdin.readline)).split()
        if not command or command[0] == "close":
            break
        if command[0] == "wait":
            after, give_up = float(command[1]), time.time() + float(command[2])
            while not _all_had_frame(clients, after) and (left := give_up - time.time()) > 0:
                frame_seen.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(frame_seen.wait(), timeout=min(left, 0.5))
            print(f"DONE {time.time()}", flush=True)
    closed_at = time.time()
    await asyncio.gather(*(c.ws.close() for c in clients if c.ws is not None), return_exceptions=True)
    await asyncio.wait(tasks, timeout=30)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "closed_at": closed_at,
        "clients": [
            {
                "started": c.started,
                "rows_at": c.rows_at,
                "error": c.error,
                "extensions": c.extensions,
                "frames": c.frames,
            }
            for c in clients
        ],
    }
    return result


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        config = json.load(f)
    results = uvloop.run(main(config))
    with open(config["out"], "w") as out:
        json.dump(results, out)
