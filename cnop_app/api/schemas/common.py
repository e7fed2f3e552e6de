"""Field types that fix the JSON rendering, the error body and the per-status error documentation."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema

from cnop_app.domain.money import decimal_str, money_str
from cnop_app.services.validation import ASSET_ID_RE


def json_number(value: Decimal) -> int | float:
    """Decimal -> int when integral (and exact in a double), else float: asset figures are display data."""
    return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)


def _isoformat(value: date) -> str:
    return value.isoformat()


# Money: a string with exactly two decimals ("1234.50").
Money = Annotated[
    Decimal,
    PlainSerializer(money_str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+\.\d{2}$", "examples": ["1234.50"]}),
]
# Quantities, prices and percentages: the exact value without exponent or trailing zeros ("0.5", "12").
DecimalText = Annotated[
    Decimal,
    PlainSerializer(decimal_str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["0.5"]}),
]
# Datetimes as `isoformat()` ("2025-01-31T12:00:00.123456+00:00"; pydantic alone would write "Z").
Timestamp = Annotated[
    datetime,
    PlainSerializer(_isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Day = Annotated[
    date,
    PlainSerializer(_isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date"}),
]


_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date_text(value: object) -> object:
    # JSON has no date type: a date comes as YYYY-MM-DD text. Pydantic's lax `date` would also read a
    # number, or numeric text, as a Unix time, against the documented schema.
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value.strip()):
        return value.strip()
    raise ValueError("must be a date (YYYY-MM-DD)")


# A date in a request body: YYYY-MM-DD text only (read by pydantic as a date; the schema says so).
DateText = Annotated[date, BeforeValidator(_date_text), WithJsonSchema({"type": "string", "format": "date"})]

# Asset figures (prices, caps, supplies, changes): JSON numbers.
JsonNumber = Annotated[Decimal, PlainSerializer(json_number), WithJsonSchema({"type": "number"})]


# Request inputs whose rule the spec can state (the services check them again): asset ids, with the
# blanks around them the services trim.
ASSET_ID_PATTERN = r"^[ \t]*" + ASSET_ID_RE.pattern.strip("^$") + r"[ \t]*$"


class ApiModel(BaseModel):
    """A response body. Field order is the JSON key order."""

    model_config = ConfigDict(from_attributes=True)


class MessageOut(ApiModel):
    message: str


class FieldError(ApiModel):
    loc: list[str]
    field: str | None
    msg: str
    type: str


class ErrorResponse(ApiModel):
    """Every error: a message, or one entry per offending input field."""

    detail: str | list[FieldError]


_ERRORS: dict[int, dict[str, Any]] = {
    401: {
        "description": "Missing, invalid, expired or revoked bearer token (or wrong credentials at login)",
        "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    },
    403: {"description": "The caller's role may not do this"},
    404: {"description": "Not found"},
    409: {"description": "Conflicts with the current state (already exists, already used, not pending)"},
    413: {"description": "Request body too large"},
    422: {"description": "Invalid input or refused by a business rule; `detail` names the field"},
    429: {
        "description": "Too many requests (rate limit) or login attempts",
        "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    },
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry of a route: the listed error statuses, each with the ErrorResponse body."""
    return {code: {"model": ErrorResponse, **_ERRORS[code]} for code in codes}
