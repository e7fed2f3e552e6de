"""Paging bounds for every list: one rule for the services, the API's query limits and the UI."""

from __future__ import annotations

from cnop_app.domain.errors import ValidationFailed

MAX_PAGE = 500
# Far beyond any real history, and inside a 64-bit SQL integer (a larger offset overflowed before).
MAX_OFFSET = 1_000_000_000


def check_page(limit: int, offset: int) -> None:
    """Refuse a page size outside 1..MAX_PAGE or an offset outside 0..MAX_OFFSET, naming the field."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE}", "limit")
    if not 0 <= offset <= MAX_OFFSET:
        raise ValidationFailed(f"offset must be between 0 and {MAX_OFFSET}", "offset")
