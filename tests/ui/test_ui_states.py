"""UI states are thin adapters: their data comes from the services (called directly under pytest)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from cnop_app.db import write_session
from cnop_app.models import Asset
from cnop_app.services import accounts, auth, trading
from cnop_app.state.dashboard import DashboardState
from tests.support.helpers import user_payload


def test_dashboard_lists_recent_fills_and_movers(ui_env: Path) -> None:
    auth.register(user_payload("dash_user"))
    accounts.deposit("dash_user", "1000")
    with write_session() as session:
        session.add(Asset(id="AAA", name="Alpha", price_usd=Decimal("10"), price_change_percentage_24h=Decimal("5")))
    trading.place_order("dash_user", {"order_type": "market_buy", "asset_id": "AAA", "quantity": "2"})
    state = DashboardState()
    state._fill("dash_user")
    assert [row["asset"] for row in state.recent] == ["AAA"]
    assert state.totals["holdings_value"] == "$20.00"
    assert [m["id"] for m in state.movers] == ["AAA"]
