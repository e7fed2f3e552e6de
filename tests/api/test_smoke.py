import re

from fastapi.testclient import TestClient


def test_health_reports_database(client: TestClient, metrics_headers: dict[str, str]) -> None:
    response = client.get("/health", headers=metrics_headers)
    assert response.status_code == 200
    assert response.json()["components"]["database"]["status"] == "ok"
    assert response.headers["x-request-id"]


def test_register_login_balance(client: TestClient, auth_headers: dict[str, str]) -> None:
    response = client.get("/api/v1/balance", headers=auth_headers)
    assert response.status_code == 200
    assert response.json()["current_balance"] == "0.00"


def test_request_ids_are_fresh_random_hex_unless_the_caller_sends_one(client: TestClient) -> None:
    ids = {client.get("/health").headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20 and all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids)
    assert client.get("/health", headers={"X-Request-ID": "bot-42.retry:1"}).headers["x-request-id"] == "bot-42.retry:1"
