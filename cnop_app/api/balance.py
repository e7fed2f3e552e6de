"""/api/v1/balance: cash balance, deposits, withdrawals, ledger history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import Response
from pydantic import BaseModel, StrictFloat, StrictInt, StrictStr

from cnop_app.api.deps import current_principal
from cnop_app.domain.money import money_str
from cnop_app.observability.metrics import CASH_MOVES
from cnop_app.services import accounts, auth

router = APIRouter(prefix="/balance", tags=["balance"])


class AmountBody(BaseModel):
    # A string keeps every digit; a JSON number is accepted and read by its decimal text.
    amount: StrictStr | StrictInt | StrictFloat


def _cash_response(result: accounts.CashResult) -> dict[str, Any]:
    return {
        "success": True,
        "message": result.message,
        "transaction_id": result.transaction_id,
        "timestamp": result.timestamp,
        "amount": result.amount,
        "balance": result.balance_after,
    }


@router.get("")
def get_balance(principal: auth.Principal = Depends(current_principal)) -> dict[str, Any]:
    balance = accounts.get_balance(principal.username)
    allowance = accounts.allowance(principal.username)
    return {
        "current_balance": money_str(balance.current_balance),
        "held_balance": money_str(balance.held),
        "available_balance": money_str(balance.available),
        "updated_at": balance.updated_at.isoformat(),
        "daily_deposit_remaining": money_str(allowance.deposit_remaining),
        "daily_withdraw_remaining": money_str(allowance.withdraw_remaining),
    }


@router.post("/deposit", status_code=201)
def deposit(
    body: AmountBody,
    principal: auth.Principal = Depends(current_principal),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    result = accounts.deposit(principal.username, body.amount, idempotency_key)
    CASH_MOVES.labels("deposit").inc()
    return _cash_response(result)


@router.post("/withdraw", status_code=201)
def withdraw(
    body: AmountBody,
    principal: auth.Principal = Depends(current_principal),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    result = accounts.withdraw(principal.username, body.amount, idempotency_key)
    CASH_MOVES.labels("withdraw").inc()
    return _cash_response(result)


@router.get("/transactions")
def transactions(
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0),
    principal: auth.Principal = Depends(current_principal),
) -> dict[str, Any]:
    rows, total = accounts.list_transactions(principal.username, limit, offset)
    return {
        "transactions": [
            {
                "transaction_id": r.transaction_id,
                "transaction_type": r.transaction_type,
                "amount": money_str(r.amount),
                "balance_after": money_str(r.balance_after),
                "status": r.status,
                "description": r.description,
                "reference": r.reference,
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ],
        "total_count": total,
        "limit": limit,
        "offset": offset,
        "has_more": offset + len(rows) < total,
    }


@router.get("/transactions/export", response_class=Response)
def export_transactions(principal: auth.Principal = Depends(current_principal)) -> Response:
    """The whole ledger as CSV (oldest first)."""
    return Response(
        accounts.ledger_csv(principal.username),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="cnop-ledger.csv"'},
    )
