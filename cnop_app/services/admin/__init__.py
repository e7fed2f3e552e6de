"""The admin console's services: users, assets, orders, the audit log, the system overview and the
integrity check. Plain Python; the REST API (`cnop_app/api/admin.py`) and the admin pages call them.

Every function takes an `AdminContext` (only constructible for an admin principal), so the role is
checked below every adapter. Every change writes one audit row (actor, target, reason, before/after,
IP, request id) in the same transaction as the change, and its outbox rows when the mirror is on.

Modules: `context` (AdminContext, the audit record), `users`, `assets`, `orders`, `audit_log`,
`system` (overview, recent errors), `integrity` (verify-ledger).
"""

from cnop_app.services.admin.assets import AdminAsset, AssetChange, list_assets, refresh_prices_now, set_trading
from cnop_app.services.admin.audit_log import (
    AuditFilters,
    AuditPage,
    audit_csv,
    audit_filters,
    event_types,
    search_audit,
)
from cnop_app.services.admin.context import AdminContext
from cnop_app.services.admin.integrity import Difference, IntegrityReport, verify_ledger
from cnop_app.services.admin.orders import OrderPage, cancel_order, list_orders
from cnop_app.services.admin.system import (
    DatabaseFigures,
    ErrorRecord,
    OrderFigures,
    SystemOverview,
    UserFigures,
    recent_errors,
    system_overview,
)
from cnop_app.services.admin.users import (
    AdjustmentResult,
    AdminUser,
    AuditView,
    UserActionResult,
    UserDetail,
    UserPage,
    adjust_cash,
    change_role,
    clear_login_throttling,
    disable_user,
    enable_user,
    get_user,
    search_users,
    sign_out_everywhere,
    user_audit,
    user_detail,
)

__all__ = [
    "AdjustmentResult",
    "AdminAsset",
    "AdminContext",
    "AdminUser",
    "AssetChange",
    "AuditFilters",
    "AuditPage",
    "AuditView",
    "DatabaseFigures",
    "Difference",
    "ErrorRecord",
    "IntegrityReport",
    "OrderFigures",
    "OrderPage",
    "SystemOverview",
    "UserActionResult",
    "UserDetail",
    "UserFigures",
    "UserPage",
    "adjust_cash",
    "audit_csv",
    "audit_filters",
    "cancel_order",
    "change_role",
    "clear_login_throttling",
    "disable_user",
    "enable_user",
    "event_types",
    "get_user",
    "list_assets",
    "list_orders",
    "recent_errors",
    "refresh_prices_now",
    "search_audit",
    "search_users",
    "set_trading",
    "sign_out_everywhere",
    "system_overview",
    "user_audit",
    "user_detail",
    "verify_ledger",
]
