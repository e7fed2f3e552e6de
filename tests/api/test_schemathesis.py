"""Property-based fuzz of the REST API from its own /openapi.json (schemathesis): no 5xx, and every
response (status, content type, headers, body) matches what the spec documents.

Every built-in check runs (server errors, status codes, content types, headers, response schemas,
negative data refused, valid data accepted, auth enforced, 405 with Allow for undeclared methods). A
registered user's bearer token goes with every case, so the authenticated routes are exercised past
401. Rate limits are off here (they have their own tests): a fuzz from one address would mostly
measure the 429s. Bounded to EXAMPLES_PER_OPERATION cases per operation (about 20 s in all).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from schemathesis.config import SchemathesisConfig

from cnop_app.api import create_api
from cnop_app.config import reset_settings
from cnop_app.services import market
from tests.support.helpers import register_and_login

EXAMPLES_PER_OPERATION = 25


@contextmanager
def throwaway_settings() -> Iterator[None]:
    """Settings from a temporary data dir, for building the app at collection; removed afterwards."""
    with tempfile.TemporaryDirectory() as data_dir, pytest.MonkeyPatch.context() as env:
        for key in [key for key in os.environ if key.startswith("CNOP_")]:
            env.delenv(key)
        env.setenv("CNOP_DATA_DIR", data_dir)
        env.setenv("CNOP_JWT_SECRET", "schema-only-" + "x" * 40)
        env.setenv("CNOP_RATE_LIMIT_ENABLED", "false")
        reset_settings()
        try:
            yield
        finally:
            reset_settings()


# Built at collection so each operation is its own test (schemathesis' fixture-based loading relies on a
# pytest attribute that pytest 9 no longer has). The app reads every other setting, the database
# included, per request: each test's own environment (cnop_env).
with throwaway_settings():
    APP = create_api()
    # Valid data is accepted, or refused by a business rule the schema cannot state (unknown asset, funds,
    # daily limits, a taken username: 404/409/422); never 400, 405, 413, 415 or 5xx.
    CONFIG = SchemathesisConfig.from_dict(
        {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}}}
    )
    # Logging out would revoke the token every later case relies on (tests/api/test_auth_api.py covers it).
    schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG).exclude(
        method="POST", path="/api/v1/auth/logout"
    )


# The running test's user token (set by the `fuzz_user` fixture).
_token: list[str] = []


@schema.auth(refresh_interval=None)
class FuzzUserToken:
    """Every case carries the user's bearer token, except where schemathesis tests its absence."""

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str | None:
        return _token[-1] if _token else None

    def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture
def fuzz_user(cnop_env: Path) -> Iterator[None]:
    """A registered user with some cash, whose token goes with every case."""
    market.seed_from_snapshot()
    with TestClient(APP) as client:
        headers = register_and_login(client, "fuzz_user")
        assert client.post("/api/v1/balance/deposit", json={"amount": "1000"}, headers=headers).status_code == 201
    _token.append(headers["Authorization"].removeprefix("Bearer "))
    yield
    _token.clear()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,  # no .hypothesis directory left behind
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.usefixtures("fuzz_user")
def test_api_matches_its_openapi(case: schemathesis.Case) -> None:
    case.call_and_validate()
