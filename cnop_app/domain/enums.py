"""The closed vocabularies of the domain. `StrEnum`: members compare equal to their stored strings."""

from __future__ import annotations

from enum import StrEnum


class OrderType(StrEnum):
    MARKET_BUY = "market_buy"
    MARKET_SELL = "market_sell"
    LIMIT_BUY = "limit_buy"
    LIMIT_SELL = "limit_sell"

    @property
    def is_buy(self) -> bool:
        return self in (OrderType.MARKET_BUY, OrderType.LIMIT_BUY)

    @property
    def is_limit(self) -> bool:
        return self in (OrderType.LIMIT_BUY, OrderType.LIMIT_SELL)

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()

    @classmethod
    def of(cls, kind: str, side: str) -> OrderType:
        """`of("limit", "buy")` is LIMIT_BUY: the trade ticket's two toggles."""
        return cls(f"{kind}_{side}")


class OrderStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class LedgerType(StrEnum):
    """Kinds of ledger entry. `hold` and `release` are reserved: holds are account fields, not entries."""

    DEPOSIT = "deposit"
    WITHDRAW = "withdraw"
    ORDER_PAYMENT = "order_payment"
    ORDER_SALE = "order_sale"
    FEE = "fee"
    HOLD = "hold"
    RELEASE = "release"
    SYSTEM_ADJUSTMENT = "system_adjustment"


class CashMove(StrEnum):
    """The two cash moves a user makes; each is also the ledger type it posts."""

    DEPOSIT = "deposit"
    WITHDRAW = "withdraw"

    @property
    def ledger_type(self) -> LedgerType:
        return LedgerType(self.value)

    @property
    def sign(self) -> int:
        return 1 if self is CashMove.DEPOSIT else -1

    @property
    def noun(self) -> str:
        return "Deposit" if self is CashMove.DEPOSIT else "Withdrawal"


class FillSide(StrEnum):
    """`AssetTransaction.transaction_type` (the reference system's upper-case values)."""

    BUY = "BUY"
    SELL = "SELL"


class Role(StrEnum):
    CUSTOMER = "customer"
    ADMIN = "admin"


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """The stored strings of an enum, in declaration order (for messages and validation)."""
    return tuple(member.value for member in enum)
