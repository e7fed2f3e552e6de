"""/api/v1/balance: cash balance, deposits, withdrawals, ledger history."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, StrictFloat, StrictInt, StrictStr

from cnop_app.api.deps import BEARER_REQUIRED, as_caller, current_principal, rendered
from cnop_app.api.schemas.balance import BalanceOut, CashMoveOut, LedgerPageOut
from cnop_app.api.schemas.common import errors
from cnop_app.domain.paging import MAX_OFFSET, MAX_PAGE
from cnop_app.services import accounts, auth

router = APIRouter(prefix="/balance", tags=["balance"])

CSV_RESPONSE = {
    200: {
        "description": "The ledger as CSV, oldest first",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


class AmountBody(BaseModel):
    # A string keeps every digit; a JSON number is accepted and read by its decimal text.
    amount: StrictStr | StrictInt | StrictFloat


@router.get("", response_model=BalanceOut, responses=errors(401, 404), openapi_extra=BEARER_REQUIRED)
async def get_balance(request: Request) -> Response:
    balance = await as_caller(
        request,
        lambda principal: BalanceOut.of(
            accounts.get_balance(principal.username), accounts.allowance(principal.username)
        ),
    )
    return rendered(balance)


@router.post("/deposit", status_code=201, response_model=CashMoveOut, responses=errors(401, 404, 413, 422))
def deposit(
    body: AmountBody,
    principal: auth.Principal = Depends(current_principal),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> CashMoveOut:
    return CashMoveOut.of(accounts.deposit(principal.username, body.amount, idempotency_key))


@router.post("/withdraw", status_code=201, response_model=CashMoveOut, responses=errors(401, 404, 413, 422))
def withdraw(
    body: AmountBody,
    principal: auth.Principal = Depends(current_principal),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> CashMoveOut:
    return CashMoveOut.of(accounts.withdraw(principal.username, body.amount, idempotency_key))


@router.get("/transactions", response_model=LedgerPageOut, responses=errors(401, 422))
def transactions(
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
    principal: auth.Principal = Depends(current_principal),
) -> LedgerPageOut:
    rows, total = accounts.list_transactions(principal.username, limit, offset)
    return LedgerPageOut.of(rows, total, limit, offset)


@router.get("/transactions/export", response_class=Response, responses={**CSV_RESPONSE, **errors(401)})
def export_transactions(principal: auth.Principal = Depends(current_principal)) -> Response:
    """The whole ledger as CSV (oldest first)."""
    return Response(
        accounts.ledger_csv(principal.username),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="cnop-ledger.csv"'},
    )
