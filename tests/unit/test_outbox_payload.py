"""The outbox payload's JSON text (orjson) reads back as the JSON-safe values the mirror expects."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import SQLModel

from cnop_app.domain.enums import LedgerType, OrderStatus, OrderType
from cnop_app.models import Account, Asset, AssetTransaction, Holding, LedgerEntry, Order, User
from cnop_app.services import outbox

MIRRORED = (User, Account, LedgerEntry, Asset, Order, Holding, AssetTransaction)
DECIMALS = [Decimal("0.001"), Decimal("1E-8"), Decimal("-150.00"), Decimal("123456789.123456789"), Decimal("0E-8")]
TIMES = [
    datetime(2026, 12, 2, 5, 7, 2, 123456, tzinfo=timezone.utc),
    datetime(2026, 12, 2, 5, 7, 2, tzinfo=timezone.utc),  # no microseconds: isoformat leaves them out
    datetime(2026, 12, 2, 5, 7, 2, 1),  # naive
]
TEXTS = ["alice_01", 'quote " and \\ backslash', "Ünïcödé ✓", OrderType.MARKET_BUY, OrderStatus.COMPLETED]
TEXTS += [LedgerType.FEE]


def _sample(annotation: Any, round_: int) -> Any:
    text = str(annotation)
    if round_ == 0 and "None" in text:
        return None
    if "bool" in text:
        return round_ % 2 == 0
    if "datetime" in text:
        return TIMES[round_ % len(TIMES)]
    if "date" in text:
        return date(2026, 12, round_ + 1)
    if "Decimal" in text:
        return DECIMALS[round_ % len(DECIMALS)]
    if "int" in text:
        return 10**round_ - 7
    return TEXTS[round_ % len(TEXTS)]


@pytest.mark.parametrize("model", MIRRORED, ids=lambda m: m.__name__)
@pytest.mark.parametrize("round_", range(6))
def test_the_payload_text_reads_back_as_the_json_safe_values(model: type[SQLModel], round_: int) -> None:
    values = {name: _sample(field.annotation, round_) for name, field in model.model_fields.items()}
    text = outbox.payload_text(model, values)
    assert json.loads(text) == outbox.values_payload(model, values)


def test_a_row_and_its_column_values_give_the_same_payload() -> None:
    row = Account(username="alice_01", cash=Decimal("9850.00"), held=Decimal("0"), version=3, updated_at=TIMES[0])
    values = {name: getattr(row, name) for name in Account.model_fields}
    assert outbox.row_payload_text(row) == outbox.payload_text(Account, values)
    assert json.loads(outbox.row_payload_text(row)) == outbox.row_payload(row)


def test_a_value_that_is_no_column_type_is_refused() -> None:
    with pytest.raises(TypeError):
        outbox.payload_text(Account, {"username": "alice_01", "cash": object()})


def test_decimals_are_written_as_their_exact_fixed_point_text() -> None:
    # The mirror stores these strings: "1E-8" or a float would not read back as the same amount.
    values = {"username": "alice_01", "cash": Decimal("1E-8"), "held": Decimal("0E-8"), "version": 1}
    payload = json.loads(outbox.payload_text(Account, values))
    assert (payload["cash"], payload["held"]) == ("0.00000001", "0.00000000")
