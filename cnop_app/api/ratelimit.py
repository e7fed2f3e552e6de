"""The REST API's rate limits: which group a request belongs to, who sends it, and the headers.

Every /api request spends a token of its route group (`services.ratelimit`) from its client IP's
bucket and, with a validly signed bearer token, from its user's bucket. Every /api response carries
X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (seconds until a token comes back) of
the tightest bucket; a refused request gets 429 with Retry-After and {"detail": ...}. /health,
/metrics, the docs and the websocket are not limited.

Runs in `RequestContextMiddleware` (pure ASGI, on the event loop): no thread hop, no database.
"""

from __future__ import annotations

import json
import time
from collections.abc import MutableMapping
from functools import lru_cache
from typing import Any

import jwt

from cnop_app.api.deps import scope_client_ip
from cnop_app.config import get_settings
from cnop_app.observability.middleware import Admission
from cnop_app.services.auth import JWT_ALGORITHM
from cnop_app.services.ratelimit import RateLimiter

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TOKEN_LENGTH = 4096


def route_group(method: str, path: str, prefix: str) -> str | None:
    """auth (credential checks and sign-ups: argon2 work), read (GET) or write; None outside /api/."""
    if not path.startswith("/api/"):
        return None
    if path in (f"{prefix}/auth/login", f"{prefix}/auth/register", f"{prefix}/auth/password"):
        return "auth"
    return "read" if method in READ_METHODS else "write"


@lru_cache(maxsize=4096)
def _signed_claims(token: str, secret: str) -> tuple[str, int] | None:
    # Signature only (no database): enough to key a bucket; the route still authenticates fully.
    try:
        claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM], options={"verify_exp": False})
    except jwt.PyJWTError:
        return None
    subject, expires = claims.get("sub"), claims.get("exp")
    if not isinstance(subject, str) or not subject or not isinstance(expires, int):
        return None
    return subject, expires


def bearer_subject(authorization: str | None) -> str | None:
    """The username of a validly signed, unexpired bearer token; None for anything else."""
    if not authorization or len(authorization) > MAX_TOKEN_LENGTH:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    claims = _signed_claims(token.strip(), get_settings().jwt_secret)
    if claims is None or claims[1] <= time.time():
        return None
    return claims[0]


class ApiRateLimits:
    """The request guard `RequestContextMiddleware` consults for every API request."""

    def __init__(self, limiter: RateLimiter, prefix: str) -> None:
        self.limiter = limiter
        self.prefix = prefix

    async def __call__(self, scope: MutableMapping[str, Any], headers: dict[str, str]) -> Admission | None:
        group = route_group(scope.get("method", "GET"), scope.get("path", ""), self.prefix)
        if group is None:
            return None
        user = bearer_subject(headers.get("authorization"))
        decision = await self.limiter.hit(group, user=user, ip=scope_client_ip(scope))
        if decision is None:
            return None
        sent = [
            (b"x-ratelimit-limit", str(decision.limit).encode()),
            (b"x-ratelimit-remaining", str(decision.remaining).encode()),
            (b"x-ratelimit-reset", str(decision.reset_seconds).encode()),
        ]
        if decision.allowed:
            return Admission(sent)
        sent.append((b"retry-after", str(decision.reset_seconds).encode()))
        detail = f"Too many requests: retry in {decision.reset_seconds} s"
        return Admission(sent, refusal=json.dumps({"detail": detail}).encode())
