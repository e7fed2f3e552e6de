"""Orders: market and limit, cancel, expiry, the limit-order matcher. Exact and atomic.

Every order runs in ONE write transaction with the user's account row locked (`lock_account`):
checks, the order row, ledger entries, the holding, the asset transaction, the idempotency record
and the outbox rows commit together or not at all.

Holds are NOT ledger entries: a limit buy reserves cash in `Account.held` (and `Order.held_amount`),
a limit sell reserves quantity in `Holding.held_quantity`. Cash only moves when an order fills, so
cash == sum(ledger) always, `held` == sum of pending buy orders' `held_amount`, and cash >= held >= 0.
A limit buy holds exactly what its fill costs (gross at the limit price + the fee fixed at placement).
The fill arithmetic and the order rules live in `cnop_app.domain.trading`.

Modules: `requests` (validation), `views` (read models), `execution` (fill and release inside the
lock), `orders` (place, cancel), `queries` (reads), `matcher` (limit fills and expiry).
"""

from cnop_app.services.trading.matcher import expire_orders, match_limit_orders
from cnop_app.services.trading.orders import cancel_order, place_order
from cnop_app.services.trading.queries import get_order, list_asset_transactions, list_open_orders, list_orders
from cnop_app.services.trading.requests import ORDER_TYPES, STATUSES, OrderRequest, parse_order_request
from cnop_app.services.trading.views import FillView, OrderView

__all__ = [
    "ORDER_TYPES",
    "STATUSES",
    "FillView",
    "OrderRequest",
    "OrderView",
    "cancel_order",
    "expire_orders",
    "get_order",
    "list_asset_transactions",
    "list_open_orders",
    "list_orders",
    "match_limit_orders",
    "parse_order_request",
    "place_order",
]
