"""Direct routes (`api.direct`): the balance and portfolio GETs answered past FastAPI's router answer
exactly as FastAPI answers them (status, headers, body), for a good token and each kind of bad one,
still counted in the metrics under their route, and nothing else takes that way. The order POST's
lane answers every kind of request as FastAPI does, taking the well-formed ones and handing FastAPI
the rest."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from cnop_app.api import create_api
from cnop_app.api.direct import LANE_MAX_BODY, direct_posts, direct_routes
from cnop_app.config import reset_settings
from cnop_app.observability.metrics import HTTP_REQUESTS
from tests.support.helpers import register_and_login
from tests.support.trading_fixtures import add_asset

DIRECT = ("/api/v1/balance", "/api/v1/portfolio")


@contextmanager
def _two_apps() -> Iterator[tuple[TestClient, TestClient]]:
    """The API with direct routes and without them, on one database."""
    with (
        TestClient(create_api(), raise_server_exceptions=False) as direct,
        TestClient(create_api(direct_routes=False), raise_server_exceptions=False) as routed,
    ):
        yield direct, routed


@pytest.fixture
def both(any_db: str) -> Iterator[tuple[TestClient, TestClient]]:
    with _two_apps() as apps:
        yield apps


@pytest.fixture
def both_unlimited(any_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, TestClient]]:
    """As `both`, without rate limits: the order cases are more writes a second than a user may make."""
    monkeypatch.setenv("CNOP_RATE_LIMIT_ENABLED", "false")
    reset_settings()
    with _two_apps() as apps:
        yield apps
    monkeypatch.delenv("CNOP_RATE_LIMIT_ENABLED")
    reset_settings()


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


def _kept(response: httpx.Response, dropped: frozenset[str] = frozenset()) -> dict[str, str]:
    """The response's headers but `dropped`, the per-response ones masked."""
    return {
        name: ("*" if name in _PER_RESPONSE else value)
        for name, value in response.headers.items()
        if name not in dropped
    }


def _answer(client: TestClient, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    response = client.get(path, headers=headers)
    return response.status_code, _kept(response), response.content


def test_only_parameterless_gets_that_return_a_response_are_direct() -> None:
    api = create_api()
    assert sorted(direct_routes(api)) == sorted(DIRECT)
    assert list(direct_posts(api)) == [ORDERS]


ORDERS = "/api/v1/orders"
JSON = {"Content-Type": "application/json"}
BUY = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.01"}
KEYED = {**JSON, "Idempotency-Key": "k-1"}
# (what, body, extra headers, which token, whether the lane answers it rather than FastAPI, status)
ORDER_CASES: list[tuple[str, bytes | list[bytes], dict[str, str], str, bool, int]] = [
    ("market buy", json.dumps(BUY).encode(), JSON, "good", True, 201),
    ("a number quantity", b'{"order_type":"market_buy","asset_id":"BTC","quantity":0.01}', JSON, "good", True, 201),
    ("an unknown field", json.dumps({**BUY, "note": "hi"}).encode(), JSON, "good", True, 201),
    ("charset", json.dumps(BUY).encode(), {"Content-Type": "application/json; charset=utf-8"}, "good", True, 201),
    ("limit buy", json.dumps({**BUY, "order_type": "limit_buy", "price": "600"}).encode(), JSON, "good", True, 201),
    ("market sell", json.dumps({**BUY, "order_type": "market_sell"}).encode(), JSON, "good", True, 201),
    ("idempotent", json.dumps(BUY).encode(), KEYED, "good", True, 201),
    ("idempotent again", json.dumps(BUY).encode(), KEYED, "good", True, 201),
    ("key reused", json.dumps({**BUY, "quantity": "0.02"}).encode(), KEYED, "good", True, 422),
    ("too expensive", json.dumps({**BUY, "quantity": "1000"}).encode(), JSON, "good", True, 422),
    ("unknown asset", json.dumps({**BUY, "asset_id": "ZZZ"}).encode(), JSON, "good", True, 422),
    ("negative quantity", json.dumps({**BUY, "quantity": "-1"}).encode(), JSON, "good", True, 422),
    ("revoked token", json.dumps(BUY).encode(), JSON, "revoked", True, 401),
    ("bad order type", json.dumps({**BUY, "order_type": "short"}).encode(), JSON, "good", False, 422),
    ("bad asset id", json.dumps({**BUY, "asset_id": "b!c"}).encode(), JSON, "good", False, 422),
    ("boolean quantity", json.dumps({**BUY, "quantity": True}).encode(), JSON, "good", False, 422),
    ("missing field", b'{"order_type":"market_buy","asset_id":"BTC"}', JSON, "good", False, 422),
    ("not JSON", b'{"order_type":', JSON, "good", False, 422),
    ("a JSON list", b"[1, 2]", JSON, "good", False, 422),
    ("JSON null", b"null", JSON, "good", False, 422),
    ("empty body", b"", JSON, "good", False, 422),
    ("text/plain", json.dumps(BUY).encode(), {"Content-Type": "text/plain"}, "good", False, 422),
    ("no content type", json.dumps(BUY).encode(), {}, "good", False, 422),
    ("+json type", json.dumps(BUY).encode(), {"Content-Type": "application/vnd.cnop+json"}, "good", False, 201),
    ("chunked", [json.dumps(BUY).encode()], JSON, "good", False, 201),
    ("over the lane's size", json.dumps({**BUY, "note": "x" * LANE_MAX_BODY}).encode(), JSON, "good", False, 201),
    ("no token", json.dumps(BUY).encode(), JSON, "none", False, 401),
    ("malformed token", json.dumps(BUY).encode(), JSON, "malformed", False, 401),
    ("other scheme", json.dumps(BUY).encode(), JSON, "basic", False, 401),
    ("bad field and no token", json.dumps({**BUY, "quantity": True}).encode(), JSON, "none", False, 401),
    ("not JSON and no token", b"{", JSON, "none", False, 422),
]
_VARYING = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d{4}-\d\d-\d\dT[0-9:.]+Z?")


def test_the_order_lane_answers_every_request_as_fastapi_does(
    both_unlimited: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each app has its own user with the same history; each request goes to both, in turn."""
    both = both_unlimited
    add_asset("BTC", "640.5")
    tokens: list[dict[str, dict[str, str]]] = []
    for client, name in zip(both, ("dana_direct", "dana_routed"), strict=True):
        good = register_and_login(client, name)
        assert client.post("/api/v1/balance/deposit", json={"amount": "1000.25"}, headers=good).status_code == 201
        revoked = register_and_login(client, name + "_out")
        assert client.post("/api/v1/auth/logout", headers=revoked).status_code == 200
        tokens.append(
            {
                "good": good,
                "revoked": revoked,
                "none": {},
                "malformed": {"Authorization": "Bearer not-a-jwt"},
                "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
            }
        )
    seen = _handled_by_fastapi(monkeypatch)
    for what, body, headers, token, by_lane, status in ORDER_CASES:
        answers = []
        for client, caller in zip(both, tokens, strict=True):
            seen.clear()
            content = iter(body) if isinstance(body, list) else body
            response = client.post(ORDERS, content=content, headers={**headers, **caller[token]})
            kept = _kept(response, frozenset({"content-length"}))  # the users' names differ in length
            answers.append((response.status_code, kept, _VARYING.sub(b"*", response.content), list(seen)))
        (direct_status, direct_headers, direct_body, direct_seen), routed = answers
        assert (direct_status, direct_headers, direct_body) == routed[:3], what
        assert direct_seen == ([] if by_lane else [ORDERS]), what
        assert routed[3] == [ORDERS], what
        assert direct_status == status, (what, direct_body)
    # What the orders did: the same for both users, the idempotent retry placed no second order.
    books = []
    for client, caller in zip(both, tokens, strict=True):
        book = client.get("/api/v1/balance", headers=caller["good"]).json()
        books.append({name: value for name, value in book.items() if name != "updated_at"})
    assert books[0] == books[1]


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
    others = (
        ("HEAD", "/api/v1/balance"),
        ("GET", "/api/v1/balance/"),
        ("GET", "/api/v1/balance/transactions"),
        ("POST", "/api/v1/orders/"),  # the order lane is for its exact path only
    )
    for method, path in others:
        answers = [client.request(method, path, headers=good) for client in (direct, routed)]
        assert (answers[0].status_code, answers[0].content) == (answers[1].status_code, answers[1].content), path
    assert seen == [path for _, path in others for _ in (direct, routed)]


def test_direct_routes_are_counted_under_their_route(
    both: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    direct, _ = both
    add_asset("BTC", "640.5")
    headers = register_and_login(direct)
    assert direct.post("/api/v1/balance/deposit", json={"amount": "100"}, headers=headers).status_code == 201
    series = [
        HTTP_REQUESTS.labels("GET", "/api/v1/balance", "2xx"),
        HTTP_REQUESTS.labels("GET", "/api/v1/portfolio", "4xx"),
        HTTP_REQUESTS.labels("POST", ORDERS, "2xx"),
        HTTP_REQUESTS.labels("POST", ORDERS, "4xx"),
    ]
    before = [counter._value.get() for counter in series]
    seen = _handled_by_fastapi(monkeypatch)
    assert direct.get("/api/v1/balance", headers=headers).status_code == 200
    assert direct.get("/api/v1/portfolio").status_code == 401
    assert direct.post(ORDERS, json=BUY, headers=headers).status_code == 201
    assert direct.post(ORDERS, json={**BUY, "quantity": "1"}, headers=headers).status_code == 422  # too little cash
    assert seen == []  # all four answered directly
    assert [counter._value.get() for counter in series] == [count + 1 for count in before]
