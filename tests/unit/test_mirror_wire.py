"""The drainer writes an item's attributes in DynamoDB's wire form (`writer._wire`) exactly as boto3's
`TypeSerializer` writes them: strings are done without its type checks, everything else by it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from cnop_app.services.mirror import writer
from cnop_app.services.mirror.layout import build_item

VALUES: list[Any] = [
    "",
    "BTC",
    "Pepe ü 🐸",
    "2026-03-04T05:06:07.891011Z",
    Decimal("0.00001172"),
    Decimal("1E+21"),
    0,
    42,
    True,
    False,
    None,
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_an_attribute_is_written_as_boto3_writes_it(value: Any) -> None:
    assert writer._wire(value) == TypeSerializer().serialize(value)


def test_a_value_boto3_refuses_is_refused() -> None:
    with pytest.raises(TypeError):
        writer._wire(1.5)  # a float: DynamoDB numbers are written from Decimals


def test_a_whole_item_is_written_as_boto3_writes_it() -> None:
    payload = {
        "order_id": "6a3c",
        "username": "ann",
        "asset_id": "ETH",
        "order_type": "market_buy",
        "status": "filled",
        "quantity": "0.25",
        "price": None,
        "filled_quantity": "0.25",
        "average_price": "3100.5",
        "created_at": "2026-03-04T05:06:07.891011+00:00",
        "updated_at": "2026-03-04T05:06:07.891011+00:00",
    }
    change = writer.change("order", "6a3c", "upsert", payload, 17)
    _kind, item = build_item("order", "6a3c", payload)
    expected = {name: TypeSerializer().serialize(value) for name, value in item.items()}
    assert change.request == {"PutRequest": {"Item": {**expected, "mirror_seq": {"N": "17"}}}}
