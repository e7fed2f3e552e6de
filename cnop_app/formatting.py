"""Display formatting shared by every page (the UI's number rules). Plain Python, unit-tested."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal

_ABBREVIATIONS = ((Decimal("1e12"), "T"), (Decimal("1e9"), "B"), (Decimal("1e6"), "M"), (Decimal("1e3"), "K"))


def _group(value: Decimal, places: int) -> str:
    quantized = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN) if places else value
    return f"{quantized:,.{places}f}"


def usd(value: Decimal | int | str | None) -> str:
    """$12,345.67; under $1 up to 6 significant decimals ($0.000123); negatives as -$5.00."""
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value))
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount != 0 and amount < 1:
        # Six significant digits, trailing zeros trimmed but at least two decimals.
        exponent = amount.adjusted()
        places = min(max(2, -exponent + 5), 12)
        text = _group(amount, places).rstrip("0")
        if len(text.split(".")[1]) < 2:
            text = _group(amount, 2)
        return f"{sign}${text}"
    return f"{sign}${_group(amount, 2)}"


def usd_compact(value: Decimal | int | str | None) -> str:
    """$1.23T, $45.6B, $7.89M for table cells (the exact value goes in a tooltip)."""
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value))
    for threshold, suffix in _ABBREVIATIONS:
        if abs(amount) >= threshold:
            scaled = abs(amount) / threshold
            # Three significant digits: $1.23T, $45.6B, $123M.
            places = 0 if scaled >= 100 else 1 if scaled >= 10 else 2
            sign = "-" if amount < 0 else ""
            return f"{sign}${_group(scaled, places)}{suffix}"
    return usd(amount)


def quantity(value: Decimal | int | str | None) -> str:
    """Up to 8 decimals, trailing zeros trimmed, thousands grouped."""
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value)).quantize(Decimal("0.00000001"), rounding=ROUND_HALF_EVEN)
    text = f"{amount:,.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def percent(value: Decimal | int | str | None) -> str:
    """Sign and two decimals: +3.14 %, -0.50 %, 0.00 %."""
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    if amount == 0:
        return "0.00 %"  # never "-0.00 %"
    sign = "+" if amount > 0 else ""
    return f"{sign}{amount:,.2f} %"


def direction(value: Decimal | int | str | None, places: int = 2) -> str:
    """'up', 'down' or 'flat' at the displayed precision: pages colour by it and add an arrow."""
    if value is None or value == "":
        return "flat"
    amount = Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return "up" if amount > 0 else "down" if amount < 0 else "flat"


def utc_exact(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def relative_time(moment: datetime | None, now: datetime | None = None) -> str:
    """ "just now", "2 min ago", "3 h ago", then the date for anything older than a week."""
    if moment is None:
        return "—"
    now = now or datetime.now(timezone.utc)
    seconds = int((now - moment).total_seconds())
    if seconds < 0:
        seconds = 0
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    if seconds < 7 * 86400:
        return f"{seconds // 86400} d ago"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d")
