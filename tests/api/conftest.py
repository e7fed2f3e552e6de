"""REST API fixtures: the FastAPI app behind a test client, a registered user's bearer headers, and the
operator's metrics token (CNOP_METRICS_TOKEN: /metrics and the detailed /health)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cnop_app.api import create_api
from cnop_app.config import reset_settings
from tests.support.helpers import register_and_login

METRICS_TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def client(cnop_env: Path) -> Iterator[TestClient]:
    with TestClient(create_api(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def auth_headers(client: TestClient) -> dict[str, str]:
    return register_and_login(client)


@pytest.fixture
def metrics_headers(cnop_env: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Configure CNOP_METRICS_TOKEN and return the headers that carry it."""
    monkeypatch.setenv("CNOP_METRICS_TOKEN", METRICS_TOKEN)
    reset_settings()
    return {"Authorization": f"Bearer {METRICS_TOKEN}"}
