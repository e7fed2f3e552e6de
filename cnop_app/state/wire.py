"""The JSON codec of the Socket.IO packets the app sends to browsers: orjson, with Reflex's own rules.

A live push encodes one delta per open tab (~6 KB for the market table). Through the standard library
that was ~50-80 µs per tab, a tenth of the worker's whole cost per tab and push; orjson does it in ~4 µs.
python-socketio takes its JSON module from `Packet.json` (what `AsyncServer(json=...)` sets), so the
codec replaces the one Reflex installed there and keeps it for everything else:
- orjson writes only JSON's own types itself (str, int, float, bool, None, dict, list, tuple).
  Dataclasses (Reflex's `StateUpdate`, `Event`), dates, times and every other type go to Reflex's
  serializers, as with Reflex's codec (`null` for what they do not know), so the browser gets the
  same JSON.
- Anything orjson refuses (an integer beyond 64 bits, a key that is not a string or a number) is
  encoded by Reflex's codec instead; decoding stays Reflex's.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson
import socketio
from reflex_base.utils.serializers import serialize

_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


class JsonModule(Protocol):
    def dumps(self, obj: Any, **kwargs: Any) -> str: ...

    def loads(self, data: str | bytes, **kwargs: Any) -> Any: ...


class WireJson:
    """A Socket.IO JSON module: `dumps` through orjson, `loads` and every fallback through `reflex`."""

    def __init__(self, fallback: JsonModule) -> None:
        self.fallback = fallback

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        # Socket.IO asks for compact separators, which is what orjson writes.
        try:
            return orjson.dumps(obj, default=serialize, option=_OPTIONS).decode()
        except orjson.JSONEncodeError:
            return self.fallback.dumps(obj, **kwargs)

    def loads(self, data: str | bytes, **kwargs: Any) -> Any:
        return self.fallback.loads(data, **kwargs)


def install(server: socketio.AsyncServer) -> None:
    """Use orjson for the packets of `server` (idempotent)."""
    current = server.packet_class.json
    if not isinstance(current, WireJson):
        server.packet_class.json = WireJson(current)
