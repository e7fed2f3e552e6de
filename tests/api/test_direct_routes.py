"""Direct routes (`api.direct`): the balance and portfolio GETs answered past FastAPI's router answer
exactly as FastAPI answers them (status, headers, body), for a good token and each kind of bad one,
still counted in the metrics under their route, and nothing else takes that way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from cnop_app.api import create_api
from cnop_app.api.direct import direct_routes
from cnop_app.observability.metrics import HTTP_REQUESTS
from tests.support.helpers import register_and_login
from tests.support.trading_fixtures import add_asset

DIRECT = ("/api/v1/balance", "/api/v1/portfolio")


@pytest.fixture
def both(any_db: str) -> Iterator[tuple[TestClient, TestClient]]:
    """The API with direct routes and without them, on one database."""
    with (
        TestClient(create_api(), raise_server_exceptions=False) as direct,
        TestClient(create_api(direct_routes=False), raise_server_exceptions=False) as routed,
    ):
        yield direct, routed


def _handled_by_fastapi(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths FastAPI's route handling saw from now on."""
    seen: list[str] = []
    handle = APIRoute.handle

    async def counting(self: APIRoute, scope: dict, receive: object, send: object) -> None:
        seen.append(scope["path"])
        await handle(self, scope, receive, send)  # type: ignore[arg-type]

    monkeypatch.setattr(APIRoute, "handle", counting)
    return seen


# Per-response values: a request id, and what is left of a rate-limit bucket whose window depends on
# the clock (the two apps' buckets can straddle a window's end). Their presence is still compared.
_PER_RESPONSE = {"x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset"}


def _answer(client: TestClient, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    response = client.get(path, headers=headers)
    kept = {name: ("*" if name in _PER_RESPONSE else value) for name, value in response.headers.items()}
    return response.status_code, kept, response.content


def test_only_parameterless_gets_that_return_a_response_are_direct() -> None:
    api = create_api()
    assert sorted(direct_routes(api)) == sorted(DIRECT)


def test_direct_routes_answer_as_fastapi_does(
    both: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    direct, routed = both
    add_asset("BTC", "64000.5")
    good = register_and_login(direct)
    deposit = direct.post("/api/v1/balance/deposit", json={"amount": "1000.25"}, headers=good)
    assert deposit.status_code == 201
    order = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.01"}
    assert direct.post("/api/v1/orders", json=order, headers=good).status_code == 201
    revoked = register_and_login(direct, "bob_0001")
    assert direct.post("/api/v1/auth/logout", headers=revoked).status_code == 200
    callers = {
        "good token": good,
        "no token": {},
        "malformed token": {"Authorization": "Bearer not-a-jwt"},
        "other scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
        "revoked token": revoked,
    }
    seen = _handled_by_fastapi(monkeypatch)
    for path in DIRECT:
        for caller, headers in callers.items():
            answers = [_answer(client, path, headers) for client in (direct, routed)]
            assert answers[0] == answers[1], (path, caller)
            assert answers[0][0] == (200 if caller == "good token" else 401), (path, caller)
    # The direct app answered without FastAPI's route handling; the routed one went through it.
    assert seen == [path for path in DIRECT for _ in callers]
    # A HEAD, a trailing slash and a route with parameters still go through FastAPI's router, both ways.
    seen.clear()
    others = (("HEAD", "/api/v1/balance"), ("GET", "/api/v1/balance/"), ("GET", "/api/v1/balance/transactions"))
    for method, path in others:
        answers = [client.request(method, path, headers=good) for client in (direct, routed)]
        assert (answers[0].status_code, answers[0].content) == (answers[1].status_code, answers[1].content), path
    assert seen == [path for _, path in others for _ in (direct, routed)]


def test_direct_routes_are_counted_under_their_route(
    both: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    direct, _ = both
    headers = register_and_login(direct)
    ok = HTTP_REQUESTS.labels("GET", "/api/v1/balance", "2xx")
    refused = HTTP_REQUESTS.labels("GET", "/api/v1/portfolio", "4xx")
    before = ok._value.get(), refused._value.get()
    assert direct.get("/api/v1/balance", headers=headers).status_code == 200
    assert direct.get("/api/v1/portfolio").status_code == 401
    assert (ok._value.get(), refused._value.get()) == (before[0] + 1, before[1] + 1)
