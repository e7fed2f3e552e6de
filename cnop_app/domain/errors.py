"""Domain errors. Adapters map them: API to HTTP status + JSON detail, UI to inline messages."""

from __future__ import annotations


class DomainError(Exception):
    """Base class. `field` names the offending input when there is one."""

    status_code = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def detail(self) -> object:
        if self.field:
            return [{"loc": ["body", self.field], "field": self.field, "msg": self.message, "type": self.code}]
        return self.message

    @property
    def code(self) -> str:
        return type(self).__name__


class ValidationFailed(DomainError):
    status_code = 422


class BusinessRuleViolation(DomainError):
    """Valid input that the rules refuse (insufficient funds, daily limit...)."""

    status_code = 422


class Conflict(DomainError):
    status_code = 409


class NotFound(DomainError):
    status_code = 404


class AuthenticationFailed(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class RateLimited(DomainError):
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
