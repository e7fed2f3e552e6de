"""Balance, deposits, withdrawals, idempotency, transaction paging and ledger export over the REST API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support.helpers import register_and_login


def test_balance_endpoints(client: TestClient) -> None:
    headers = register_and_login(client, "henry_01")
    assert client.get("/api/v1/balance", headers=headers).json()["current_balance"] == "0.00"
    response = client.post("/api/v1/balance/deposit", headers=headers, json={"amount": "250.50"})
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True and body["transaction_id"] and body["timestamp"]
    response = client.post("/api/v1/balance/withdraw", headers=headers, json={"amount": 50.5})
    assert response.status_code == 201
    balance = client.get("/api/v1/balance", headers=headers).json()
    assert balance["current_balance"] == "200.00"
    assert balance["updated_at"]
    response = client.post("/api/v1/balance/withdraw", headers=headers, json={"amount": "500"})
    assert response.status_code == 422
    assert "short by $300.00" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "-1"},
        {"amount": 0},
        {"amount": "1.234"},
        {"amount": "1e9"},
        {"amount": None},
        {"amount": True},
        {"amount": [5]},
        {},
        {"amount": "ten"},
    ],
)
def test_bad_amounts_over_http(client: TestClient, auth_headers: dict[str, str], body: dict) -> None:
    response = client.post("/api/v1/balance/deposit", headers=auth_headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "amount"
    assert client.get("/api/v1/balance", headers=auth_headers).json()["current_balance"] == "0.00"


def test_idempotency_key_over_http(client: TestClient, auth_headers: dict[str, str]) -> None:
    headers = {**auth_headers, "Idempotency-Key": "abc-1"}
    first = client.post("/api/v1/balance/deposit", headers=headers, json={"amount": "10"})
    second = client.post("/api/v1/balance/deposit", headers=headers, json={"amount": "10"})
    assert first.status_code == second.status_code == 201
    assert first.json()["transaction_id"] == second.json()["transaction_id"]
    different = client.post("/api/v1/balance/deposit", headers=headers, json={"amount": "11"})
    assert different.status_code == 422
    assert client.get("/api/v1/balance", headers=auth_headers).json()["current_balance"] == "10.00"


def test_transactions_pagination_newest_first(client: TestClient, auth_headers: dict[str, str]) -> None:
    for i in range(1, 8):
        client.post("/api/v1/balance/deposit", headers=auth_headers, json={"amount": str(i)})
    page1 = client.get("/api/v1/balance/transactions?limit=3", headers=auth_headers).json()
    page3 = client.get("/api/v1/balance/transactions?limit=3&offset=6", headers=auth_headers).json()
    assert page1["total_count"] == 7 and page1["has_more"] is True
    assert [t["amount"] for t in page1["transactions"]] == ["7.00", "6.00", "5.00"]
    assert [t["amount"] for t in page3["transactions"]] == ["1.00"] and page3["has_more"] is False
    item = page1["transactions"][0]
    assert {"transaction_id", "transaction_type", "amount", "status", "created_at"} <= set(item)
    for query in ("limit=0", "limit=501", "offset=-1", "limit=abc"):
        assert client.get(f"/api/v1/balance/transactions?{query}", headers=auth_headers).status_code == 422


def test_ledger_export_is_exact_csv(client: TestClient, auth_headers: dict[str, str]) -> None:
    client.post("/api/v1/balance/deposit", headers=auth_headers, json={"amount": "100.10"})
    client.post("/api/v1/balance/withdraw", headers=auth_headers, json={"amount": "0.10"})
    response = client.get("/api/v1/balance/transactions/export", headers=auth_headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "created_at,transaction_id,type,amount,balance_after,reference,description"
    assert [line.split(",")[2:5] for line in lines[1:]] == [
        ["deposit", "100.10", "100.10"],
        ["withdraw", "-0.10", "100.00"],
    ]
    assert client.get("/api/v1/balance/transactions/export").status_code == 401
