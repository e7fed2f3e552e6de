"""Registration, login, profile, sessions and password change over the REST API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support.helpers import STRONG_PASSWORD, register_and_login, user_payload


def test_register_login_profile_logout_over_http(client: TestClient) -> None:
    response = client.post("/api/v1/auth/register", json=user_payload("carol_99"))
    assert response.status_code == 201
    assert response.json()["message"] == "User registered successfully"
    response = client.post("/api/v1/auth/login", json={"username": "Carol_99", "password": STRONG_PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    profile = client.get("/api/v1/auth/profile", headers=headers).json()
    for key in (
        "username",
        "email",
        "first_name",
        "last_name",
        "phone",
        "date_of_birth",
        "marketing_emails_consent",
        "created_at",
        "updated_at",
    ):
        assert key in profile
    assert profile["phone"] is None
    response = client.put(
        "/api/v1/auth/profile", headers=headers, json={"first_name": "Caroline", "phone": "5551234567"}
    )
    assert response.status_code == 200
    assert response.json()["message"] == "Profile updated successfully"
    assert response.json()["user"]["first_name"] == "Caroline"
    assert client.post("/api/v1/auth/logout", headers=headers).json() == {"message": "Logged out successfully"}
    for path in ("/api/v1/auth/profile", "/api/v1/balance"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "short"}, "username"),
        ({"email": "nope"}, "email"),
        ({"password": "weak"}, "password"),
        ({"username": 123456789}, "username"),
        ({"marketing_emails_consent": "yes"}, "marketing_emails_consent"),
        ({"date_of_birth": "not-a-date"}, "date_of_birth"),
        # JSON has no date type: a date is YYYY-MM-DD text, not a number (or numeric text) read as a Unix time.
        ({"date_of_birth": 0}, "date_of_birth"),
        ({"date_of_birth": 946684800}, "date_of_birth"),
        ({"date_of_birth": "946684800"}, "date_of_birth"),
    ],
)
def test_register_validation_errors_are_422_naming_the_field(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/api/v1/auth/register", json={**user_payload("dave_001"), **body})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(item["field"] == field for item in detail), detail


@pytest.mark.parametrize("value", [0, 946684800, "946684800", 1.5, True])
def test_a_profile_date_of_birth_that_is_not_date_text_is_422_and_changes_nothing(
    client: TestClient, value: object
) -> None:
    client.post("/api/v1/auth/register", json={**user_payload("erin_0001"), "date_of_birth": "1990-05-17"})
    token = client.post("/api/v1/auth/login", json={"username": "erin_0001", "password": STRONG_PASSWORD}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    response = client.put("/api/v1/auth/profile", headers=headers, json={"date_of_birth": value})
    assert response.status_code == 422, response.text
    assert any(item["field"] == "date_of_birth" for item in response.json()["detail"])
    assert client.get("/api/v1/auth/profile", headers=headers).json()["date_of_birth"] == "1990-05-17"
    ok = client.put("/api/v1/auth/profile", headers=headers, json={"date_of_birth": "1991-02-03"})
    assert ok.status_code == 200 and ok.json()["user"]["date_of_birth"] == "1991-02-03"


def test_missing_fields_malformed_json_and_huge_bodies(client: TestClient) -> None:
    response = client.post("/api/v1/auth/register", json={"username": "dave_001"})
    assert response.status_code == 422
    assert {"email", "password", "first_name", "last_name"} <= {d["field"] for d in response.json()["detail"]}
    response = client.post("/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    response = client.post("/api/v1/auth/login", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert response.status_code == 422
    response = client.post(
        "/api/v1/auth/register", content=b"x" * 200_000, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    assert client.get("/api/v1/does/not/exist").status_code == 404
    assert client.get("/api/v1/does/not/exist").json()["detail"].startswith("Not found")


def test_duplicate_registration_is_409(client: TestClient) -> None:
    assert client.post("/api/v1/auth/register", json=user_payload("erin_001")).status_code == 201
    response = client.post("/api/v1/auth/register", json=user_payload("erin_001", email="x@example.com"))
    assert response.status_code == 409


def test_login_failures_are_401_then_429_with_retry_after(client: TestClient) -> None:
    register_and_login(client, "frank_01")
    for _ in range(5):
        response = client.post("/api/v1/auth/login", json={"username": "frank_01", "password": "Wrong-Password-9"})
        assert response.status_code == 401
        assert response.json()["detail"] == "Invalid username or password"
    response = client.post("/api/v1/auth/login", json={"username": "frank_01", "password": STRONG_PASSWORD})
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0


def test_bad_tokens_get_401(client: TestClient) -> None:
    # The hot reads check the token themselves (`deps.as_caller`): the same 401, body and headers.
    for header in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        answers = [
            client.get(path, headers=header)
            for path in ("/api/v1/auth/profile", "/api/v1/balance", "/api/v1/portfolio")
        ]
        assert [answer.status_code for answer in answers] == [401, 401, 401]
        assert all(answer.json() == answers[0].json() for answer in answers)
        assert all(
            answer.headers.get("www-authenticate") == answers[0].headers.get("www-authenticate") for answer in answers
        )


def test_password_change_and_sessions_over_http(client: TestClient) -> None:
    headers = register_and_login(client, "gina_001")
    other = client.post("/api/v1/auth/login", json={"username": "gina_001", "password": STRONG_PASSWORD}).json()
    sessions = client.get("/api/v1/auth/sessions", headers=headers).json()["sessions"]
    assert len(sessions) == 2 and sum(s["current"] for s in sessions) == 1
    response = client.post(
        "/api/v1/auth/password",
        headers=headers,
        json={"current_password": STRONG_PASSWORD, "new_password": "weak"},
    )
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "new_password"
    response = client.post(
        "/api/v1/auth/password",
        headers=headers,
        json={"current_password": STRONG_PASSWORD, "new_password": "Brand-New-Pass-7"},
    )
    assert response.status_code == 200 and response.json()["revoked_sessions"] == 1
    other_headers = {"Authorization": f"Bearer {other['access_token']}"}
    assert client.get("/api/v1/auth/profile", headers=other_headers).status_code == 401
    assert client.get("/api/v1/auth/profile", headers=headers).status_code == 200


def test_request_id_is_echoed_or_created(client: TestClient) -> None:
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = client.get("/health", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert generated and " " not in generated


def test_metrics_use_route_templates(client: TestClient) -> None:
    client.get("/api/v1/orders/some-random-id-1")
    client.get("/api/v1/unknown/abc")
    text = client.get("/metrics").text
    assert "cnop_http_requests_total" in text
    assert "some-random-id-1" not in text and "/unknown/abc" not in text
