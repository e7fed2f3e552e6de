"""Input rules shared by the API and the UI (from the reference system's contract)."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

from cnop_app.domain.errors import ValidationFailed

USERNAME_RE = re.compile(r"^[A-Za-z0-9_]{6,30}$")
EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
NAME_RE = re.compile(r"^[^\W\d_](?:[^\W\d_]|[ '\-])*$")
PASSWORD_SPECIALS = "!@#$%^&*()-_=+"
PASSWORD_MIN = 12
PASSWORD_MAX = 256
ASSET_ID_RE = re.compile(r"^[A-Za-z0-9]{1,10}$")


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be a string", field)
    return value.strip()


def username(value: object, field: str = "username") -> str:
    text = _text(value, field)
    if not USERNAME_RE.match(text):
        raise ValidationFailed(f"{field} must be 6-30 characters of letters, digits and underscore", field)
    return text.lower()


def email(value: object, field: str = "email") -> str:
    text = _text(value, field).lower()
    if len(text) > 254 or not EMAIL_RE.match(text):
        raise ValidationFailed(f"{field} must be a valid email address", field)
    return text


def password(value: object, field: str = "password") -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be a string", field)
    problems = []
    if len(value) < PASSWORD_MIN:
        problems.append(f"at least {PASSWORD_MIN} characters")
    if len(value) > PASSWORD_MAX:
        raise ValidationFailed(f"{field} must be at most {PASSWORD_MAX} characters", field)
    if not re.search(r"[A-Z]", value):
        problems.append("an upper-case letter")
    if not re.search(r"[a-z]", value):
        problems.append("a lower-case letter")
    if not re.search(r"\d", value):
        problems.append("a digit")
    if not any(ch in PASSWORD_SPECIALS for ch in value):
        problems.append(f"one of {PASSWORD_SPECIALS}")
    if problems:
        raise ValidationFailed(f"{field} needs " + ", ".join(problems), field)
    return value


def person_name(value: object, field: str) -> str:
    text = _text(value, field)
    if not 1 <= len(text) <= 50 or not NAME_RE.match(text):
        raise ValidationFailed(f"{field} must be 1-50 letters, spaces, apostrophes or hyphens", field)
    return text


def phone(value: object, field: str = "phone") -> str | None:
    if value is None:
        return None
    text = _text(value, field)
    if text == "":
        return None
    digits = re.sub(r"[\s()+.-]", "", text)
    if not digits.isdigit() or not 10 <= len(digits) <= 15:
        raise ValidationFailed(f"{field} must be 10-15 digits", field)
    return digits


def date_of_birth(value: object, field: str = "date_of_birth") -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValidationFailed(f"{field} must be a date (YYYY-MM-DD)", field) from exc
    if not isinstance(value, date):
        raise ValidationFailed(f"{field} must be a date (YYYY-MM-DD)", field)
    today = datetime.now(timezone.utc).date()
    age = today.year - value.year - ((today.month, today.day) < (value.month, value.day))
    if not 13 <= age <= 120:
        raise ValidationFailed(f"{field}: age must be between 13 and 120", field)
    return value


def boolean(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ValidationFailed(f"{field} must be true or false", field)


def asset_id(value: object, field: str = "asset_id") -> str:
    text = _text(value, field)
    if not ASSET_ID_RE.match(text):
        raise ValidationFailed(f"{field} must be 1-10 letters or digits", field)
    return text.upper()
