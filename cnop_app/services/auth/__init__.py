"""Users, passwords, tokens and sessions.

Modules: `passwords` (argon2 hashing), `sessions` (JWT issue, verify, revoke), `login` (credential
check, failure counter and lockout), `users` (registration, profile, password change, bootstrap admin).
"""

from cnop_app.services.auth.login import login
from cnop_app.services.auth.passwords import hash_password
from cnop_app.services.auth.sessions import (
    JWT_ALGORITHM,
    IssuedToken,
    Principal,
    SessionRows,
    SessionView,
    active_sessions,
    authenticate,
    logout,
    read_sessions,
    revoke_session,
    verify_token,
)
from cnop_app.services.auth.users import (
    PROFILE_FIELDS,
    ROLES,
    Profile,
    bootstrap_admin,
    change_password,
    get_profile,
    register,
    update_profile,
)

__all__ = [
    "JWT_ALGORITHM",
    "PROFILE_FIELDS",
    "ROLES",
    "IssuedToken",
    "Principal",
    "Profile",
    "SessionRows",
    "SessionView",
    "active_sessions",
    "authenticate",
    "verify_token",
    "bootstrap_admin",
    "change_password",
    "get_profile",
    "hash_password",
    "login",
    "logout",
    "read_sessions",
    "register",
    "revoke_session",
    "update_profile",
]
