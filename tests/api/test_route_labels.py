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


def test_invented_methods_share_one_metrics_series(client: TestClient, metrics_headers: dict[str, str]) -> None:
    """A client may send any method name: each one must not become a series of its own."""
    for method in ("BREW", "WHEN", "PROPFIND"):
        assert client.request(method, "/api/v1/balance").status_code == 405
    assert client.request("GET", "/api/v1/balance").status_code == 401
    text = client.get("/metrics", headers=metrics_headers).text
    methods = set(re.findall(r'cnop_http_requests_total\{method="([^"]+)",route="/api/v1/balance"', text))
    # Other tests in this process may have sent HEAD or POST here: only the invented names matter.
    assert "other" in methods and not methods & {"BREW", "WHEN", "PROPFIND"}
