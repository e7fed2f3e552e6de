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
