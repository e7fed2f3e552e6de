"""The typed shapes states hand to pages: table rows, detail panels, chart points and form errors.

TypedDicts, so Reflex sends them as plain objects, the charts accept them as data, and a page that reads
a key its row does not declare fails when the app compiles instead of rendering nothing. Texts are
formatted once in the state (`cnop_app.formatting`); only chart coordinates are numbers.
"""

from __future__ import annotations

from typing import TypedDict, TypeVar

from cnop_app.domain.errors import DomainError

# ---- market


class MarketRow(TypedDict):
    """One asset as the dashboard and the landing page show it (formatted once per market version)."""

    id: str
    name: str
    image: str
    rank: str
    price: str
    change24: str
    dir24: str
    change7d: str
    dir7d: str
    mcap: str
    mcap_exact: str
    volume: str
    volume_exact: str
    stale: str  # "yes" or ""
    active: str  # "yes" or ""
    flash: str  # "changed" when the price moved since this client's last view
    key: str  # re-keyed per market version when the price changed, so the flash replays


# The market table is split by how often each part changes, because Reflex sends a changed var whole:
# the rows (order and the fields that rarely change) and one map per moving group, keyed by asset id.
# A refresh that moved a few prices sends the price map and little else; the sparklines go out only
# when one of them changed. The moving groups are short lists (positions below), not objects: every
# browser receives them after each refresh, and keys would double their size.


class MarketLine(TypedDict):
    """A row of the market table: what stays the same from one refresh to the next."""

    id: str
    name: str
    image: str
    rank: str
    stale: str  # "yes" or ""
    active: str  # "yes" or ""


# MarketState.changes[asset_id]: [change24, dir24, change7d, dir7d]
CHANGE24, DIR24, CHANGE7D, DIR7D = 0, 1, 2, 3
# MarketState.mcaps[asset_id] and .volumes[asset_id]: [compact, exact]
COMPACT, EXACT = 0, 1


class MarketStatus(TypedDict):
    label: str
    colour: str
    as_of: str
    as_of_exact: str
    breaker: str


class AssetDetail(TypedDict, total=False):
    name: str
    image: str
    rank: str
    price: str
    change24: str
    dir24: str
    change_abs24: str
    change7d: str
    change30d: str
    high24: str
    low24: str
    mcap: str
    volume: str
    circulating: str
    total_supply: str
    max_supply: str
    ath: str
    ath_change: str
    ath_date: str
    atl: str
    atl_change: str
    atl_date: str
    status: str
    last_updated: str
    stale: str
    description: str


class PricePoint(TypedDict):
    t: str
    price: float
    label: str


# ---- trading


class AssetOption(TypedDict):
    id: str
    label: str


class TicketPreview(TypedDict, total=False):
    market_price: str
    price: str
    quantity: str
    gross: str
    fee: str
    total: str
    cash: str
    holding: str
    cash_after: str
    qty_after: str
    ready: str  # "yes" once quantity and price give a complete order


class OrderRow(TypedDict):
    id: str
    short_id: str
    type: str
    side: str
    asset: str
    quantity: str
    price: str
    total: str
    fee: str
    status: str
    status_colour: str
    when: str
    exact: str
    expires: str


class HoldingRow(TypedDict):
    id: str
    name: str
    quantity: str
    held: str
    avg_cost: str
    price: str
    value: str
    cost_basis: str
    pnl: str
    pnl_pct: str
    pnl_dir: str
    realized: str
    allocation: str


class PortfolioTotals(TypedDict, total=False):
    equity: str
    cash: str
    held_cash: str
    available: str
    holdings_value: str
    unrealized: str
    unrealized_pct: str
    unrealized_dir: str
    realized: str
    realized_dir: str


class AllocationSlice(TypedDict):
    name: str
    value: float


class ValuePoint(TypedDict):
    t: str
    value: float


# ---- account and profile


class LedgerRow(TypedDict):
    id: str
    type: str
    amount: str
    direction: str
    balance_after: str
    description: str
    when: str
    exact: str


class SessionRow(TypedDict):
    id: str
    issued: str
    exact: str
    agent: str
    ip: str
    current: str  # "yes" for the session of this browser


# ---- form errors: field name -> message, for the fields each form shows


class TicketErrors(TypedDict, total=False):
    form: str
    asset_id: str
    order_type: str
    quantity: str
    price: str
    expires_at: str


class AuthFormErrors(TypedDict, total=False):
    username: str
    password: str
    confirm_password: str
    first_name: str
    last_name: str
    email: str
    phone: str
    date_of_birth: str


class CashErrors(TypedDict, total=False):
    deposit: str
    withdraw: str


class ProfileErrors(TypedDict, total=False):
    form: str
    first_name: str
    last_name: str
    email: str
    phone: str
    date_of_birth: str


class PasswordErrors(TypedDict, total=False):
    form: str
    current_password: str
    new_password: str
    confirm_password: str


E = TypeVar("E")


def shows(errors: type[E], field: str | None) -> bool:
    """Whether the form behind `errors` has an inline place for `field`."""
    return field is not None and field in errors.__annotations__


def one_error(errors: type[E], key: str, message: str) -> E:
    """An error map holding one message under `key`."""
    return errors(**{key: message})  # type: ignore[call-arg]


def error_for(errors: type[E], exc: DomainError, fallback: str = "form") -> E:
    """The error map of a failed submit: under the offending field when the form shows it, else under
    `fallback` (a message about a field the form has no input for is still seen)."""
    return one_error(errors, exc.field if exc.field and shows(errors, exc.field) else fallback, exc.message)
