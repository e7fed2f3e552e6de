"""Metrics name each API route by its whole template."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.support.trading_fixtures import add_asset


def test_metrics_name_each_route_by_its_whole_template(client: TestClient, metrics_headers: dict[str, str]) -> None:
    """An included router's route knows only its own part of the path (`/portfolio`): the label is the
    whole one, as dashboards and alerts select it (`route=~"/api/v1/orders.*"`)."""
    add_asset("BTC", "64000.5")
    assert client.get("/api/v1/inventory/assets/BTC").status_code == 200
    assert client.get("/api/v1/portfolio").status_code == 401
    text = client.get("/metrics", headers=metrics_headers).text
    routes = set(re.findall(r'cnop_http_requests_total\{method="GET",route="([^"]+)"', text))
    assert {"/api/v1/inventory/assets/{asset_id}", "/api/v1/portfolio"} <= routes
    assert not {route for route in routes if not route.startswith(("/api/", "/health", "/metrics"))}
