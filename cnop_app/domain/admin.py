"""Rules of the admin console and the account tools: reasons, adjustments, resets, roles, filters.

Pure: the services apply them inside their transactions (`cnop_app.services.admin`,
`cnop_app.services.account_reset`).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

from cnop_app.domain.cash import MAX_CASH_MOVE
from cnop_app.domain.enums import Role, values
from cnop_app.domain.errors import BusinessRuleViolation, ValidationFailed
from cnop_app.domain.money import money_str, parse_decimal, to_cents
from cnop_app.domain.timeutil import parse_iso

MAX_REASON = 500
MAX_ADJUSTMENT = MAX_CASH_MOVE
MAX_STARTING_CASH = MAX_CASH_MOVE
MAX_QUERY = 100
# Sort keys of the user list; a leading "-" sorts descending.
USER_SORTS = ("username", "email", "name", "created_at", "role", "is_active")


def parse_reason(value: object, field: str = "reason") -> str:
    """Every admin action names why: 1-500 characters once trimmed (it lands in the audit log)."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f"{field} is required", field)
    text = " ".join(value.split())  # one line in the audit log and the CSV export
    if len(text) > MAX_REASON:
        raise ValidationFailed(f"{field} must be at most {MAX_REASON} characters", field)
    return text


def parse_adjustment(value: object, field: str = "amount") -> Decimal:
    """A signed cash adjustment: whole cents, not zero, at most 1,000,000 either way."""
    amount = parse_decimal(value, field, max_places=2)
    if amount == 0:
        raise ValidationFailed(f"{field} must not be zero", field)
    if abs(amount) > MAX_ADJUSTMENT:
        raise ValidationFailed(
            f"{field} must be between -{money_str(MAX_ADJUSTMENT)} and {money_str(MAX_ADJUSTMENT)}", field
        )
    return to_cents(amount)


def parse_starting_cash(value: object, field: str = "starting_cash") -> Decimal:
    """The cash a paper account is reset to: whole cents from 0 to 1,000,000 (the largest deposit)."""
    amount = parse_decimal(value, field, max_places=2)
    if amount < 0:
        raise ValidationFailed(f"{field} must not be negative", field)
    if amount > MAX_STARTING_CASH:
        raise ValidationFailed(f"{field} must be at most {money_str(MAX_STARTING_CASH)}", field)
    return to_cents(amount)


def parse_role(value: object, field: str = "role") -> Role:
    if not isinstance(value, str) or value.strip().lower() not in values(Role):
        raise ValidationFailed(f"{field} must be one of " + ", ".join(values(Role)), field)
    return Role(value.strip().lower())


def require_admin_remains(active_admins: int, target_is_active_admin: bool, stays_active_admin: bool) -> None:
    """The last active admin can be neither demoted nor disabled: someone must be able to run the console."""
    if target_is_active_admin and not stays_active_admin and active_admins <= 1:
        raise BusinessRuleViolation("The last active admin cannot be demoted or disabled", "username")


def parse_query(value: object, field: str = "query") -> str | None:
    """A search text (trimmed, at most 100 characters); empty means no filter."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be a string", field)
    text = value.strip()
    if len(text) > MAX_QUERY:
        raise ValidationFailed(f"{field} must be at most {MAX_QUERY} characters", field)
    return text or None


def like_pattern(text: str) -> str:
    """A case-insensitive LIKE pattern matching `text` anywhere (with `\\` as the escape character)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def parse_sort(value: object, allowed: tuple[str, ...] = USER_SORTS, field: str = "sort") -> tuple[str, bool]:
    """("created_at", True) for "-created_at": the key and whether it sorts descending."""
    if value is None or value == "":
        return allowed[0], False
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be a string", field)
    text = value.strip()
    descending = text.startswith("-")
    key = text[1:] if descending else text
    if key not in allowed:
        raise ValidationFailed(f"{field} must be one of " + ", ".join(allowed) + " (prefix - to reverse)", field)
    return key, descending


def _bound(value: object, field: str, end_of_day: bool) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and len(value.strip()) == 10:  # a date alone: its whole day counts
        day = parse_iso(value)
        if day is None:
            raise ValidationFailed(f"{field} must be an ISO 8601 date or date-time", field)
        start = datetime.combine(day.date(), time.min, tzinfo=timezone.utc)
        return start + timedelta(days=1) if end_of_day else start
    moment = parse_iso(value)
    if moment is None:
        raise ValidationFailed(f"{field} must be an ISO 8601 date or date-time", field)
    return moment


def parse_period(since: object, until: object) -> tuple[datetime | None, datetime | None]:
    """A filter period: `since` inclusive, `until` exclusive; a date alone for `until` includes that day."""
    start = _bound(since, "since", end_of_day=False)
    end = _bound(until, "until", end_of_day=True)
    if start is not None and end is not None and end <= start:
        raise ValidationFailed("until must be after since", "until")
    return start, end
