"""The websockets' JSON codec (orjson) writes what Reflex's own codec writes, for real pushes and more."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import reflex as rx
import socketio
from reflex.state import StateUpdate
from reflex_base.event import Event
from reflex_base.utils.format import json_dumps

from cnop_app.services import market as market_service
from cnop_app.state import market as market_state
from cnop_app.state import wire
from cnop_app.state.live import refresh_client
from cnop_app.state.market import MarketState, snapshot
from tests.support.trading_fixtures import set_price
from tests.ui.helpers import app_tree, listed_asset, substate

# Reflex's codec for Socket.IO packets: its json_dumps (Reflex's serializers as `default`).
REFLEX_JSON = SimpleNamespace(dumps=json_dumps, loads=json.loads)
COMPACT = (",", ":")  # what Socket.IO asks for


class Side(Enum):
    BUY = "buy"


def _same(payload: Any) -> str:
    sent = wire.WireJson(REFLEX_JSON).dumps(payload, separators=COMPACT)
    assert json.loads(sent) == json.loads(json_dumps(payload, separators=COMPACT))
    return sent


def test_a_live_push_is_encoded_as_reflex_encodes_it(ui_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listed_asset("AAA", "10")
    listed_asset("BBB", "2")
    monkeypatch.setattr(market_state.market, "market_version", lambda: 1)
    root = app_tree("/market")
    market = substate(root, MarketState)
    market.load()
    root._clean()
    set_price("AAA", "11.5")
    monkeypatch.setattr(market_state.market, "market_version", lambda: 2)  # as a refresh bumps it
    market_service.clear_cache()
    snapshot.invalidate()
    toasts = refresh_client([market])
    update = StateUpdate(delta=root.get_delta(), events=Event.from_event_type(toasts))
    sent = _same(["event", update])
    assert "$11.50" in sent and '"final"' not in sent  # Reflex's StateUpdate serializer drops empty fields
    # A frontend event (a toast for a limit fill) goes through Reflex's serializers too.
    _same(["event", StateUpdate(events=Event.from_event_type([rx.toast.success("Filled")]))])


def test_other_types_follow_reflex_and_the_rest_falls_back() -> None:
    at = datetime(2026, 12, 1, 15, 4, 5, 123456, tzinfo=timezone.utc)
    sent = _same({"at": at, "amount": Decimal("1.10"), "side": Side.BUY, "n": 3, "tuple": (1, "é"), "none": None})
    assert "é" in sent  # not escaped, as Reflex sends it
    assert json.loads(sent)["at"] == json.loads(json_dumps(at))  # Reflex's datetime format, not RFC 3339
    # orjson refuses integers beyond 64 bits; Reflex's codec writes them.
    assert _same({"big": 2**70}) == '{"big":1180591620717411303424}'
    assert _same({1: "a"}) == '{"1":"a"}'


def test_install_replaces_the_servers_codec_once() -> None:
    server = socketio.AsyncServer(async_mode="asgi", json=REFLEX_JSON)
    try:
        wire.install(server)
        wire.install(server)
        codec = server.packet_class.json
        assert isinstance(codec, wire.WireJson) and codec.fallback is REFLEX_JSON
        packet = server.packet_class(socketio.packet.EVENT, data=["event", {"x": Decimal("2")}], namespace="/_event")
        assert packet.encode() == '2/_event,["event",{"x":2.0}]'  # Reflex writes Decimals as numbers
    finally:
        server.packet_class.json = REFLEX_JSON
