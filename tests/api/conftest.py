"""REST API fixtures: the FastAPI app behind a test client, and a registered user's bearer headers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cnop_app.api import create_api
from tests.support.helpers import register_and_login


@pytest.fixture
def client(cnop_env: Path) -> Iterator[TestClient]:
    with TestClient(create_api(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def auth_headers(client: TestClient) -> dict[str, str]:
    return register_and_login(client)
