"""Bodies of /api/v1/balance."""

from __future__ import annotations

from cnop_app.api.schemas.common import ApiModel, Money, Timestamp
from cnop_app.services import accounts


class BalanceOut(ApiModel):
    current_balance: Money
    held_balance: Money
    available_balance: Money
    updated_at: Timestamp
    daily_deposit_remaining: Money
    daily_withdraw_remaining: Money

    @classmethod
    def of(cls, balance: accounts.Balance, allowance: accounts.Allowance) -> BalanceOut:
        return cls(
            current_balance=balance.current_balance,
            held_balance=balance.held,
            available_balance=balance.available,
            updated_at=balance.updated_at,
            daily_deposit_remaining=allowance.deposit_remaining,
            daily_withdraw_remaining=allowance.withdraw_remaining,
        )


class CashMoveOut(ApiModel):
    """A deposit or withdrawal; an idempotent retry returns the first answer (already rendered)."""

    success: bool
    message: str
    transaction_id: str
    timestamp: str
    amount: str
    balance: str

    @classmethod
    def of(cls, result: accounts.CashResult) -> CashMoveOut:
        return cls(
            success=True,
            message=result.message,
            transaction_id=result.transaction_id,
            timestamp=result.timestamp,
            amount=result.amount,
            balance=result.balance_after,
        )


class LedgerEntryOut(ApiModel):
    transaction_id: str
    transaction_type: str
    amount: Money
    balance_after: Money
    status: str
    description: str
    reference: str | None
    created_at: Timestamp


class LedgerPageOut(ApiModel):
    transactions: list[LedgerEntryOut]
    total_count: int
    limit: int
    offset: int
    has_more: bool

    @classmethod
    def of(cls, rows: list[accounts.LedgerView], total: int, limit: int, offset: int) -> LedgerPageOut:
        return cls(
            transactions=[LedgerEntryOut.model_validate(r) for r in rows],
            total_count=total,
            limit=limit,
            offset=offset,
            has_more=offset + len(rows) < total,
        )
