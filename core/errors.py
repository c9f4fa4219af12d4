"""The domain error hierarchy.

Services raise these; `broker.kit.problems` maps each to an RFC 9457 problem document in one
place. They sit in `core`, below both `catalog` and `broker`, so every layer raises the same ones.
"""

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with the input: where it is and how to fix it."""

    location: str
    message: str
    type: str = "invalid"

    def as_dict(self) -> dict[str, Any]:
        return {"location": self.location, "message": self.message, "type": self.type}


class DomainError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra or {}


class NotFound(DomainError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class InvalidInput(DomainError):
    """Well-formed input that breaks a domain rule (unknown reference, contradiction)."""

    status = 422
    code = "invalid-input"
    title = "Invalid input"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class PreconditionRequired(DomainError):
    status = 428
    code = "precondition-required"
    title = "Precondition required"


class PreconditionFailed(DomainError):
    status = 412
    code = "precondition-failed"
    title = "Precondition failed"


class TooLarge(DomainError):
    status = 413
    code = "content-too-large"
    title = "Content too large"


class ValidationFailed(InvalidInput):
    """Delivered data that breaks the declared schema; the problem carries the full report."""

    code = "validation-failed"
    title = "Data failed validation"


class Unauthorized(DomainError):
    """No usable credentials: RFC 6750 says which, in WWW-Authenticate."""

    status = 401
    code = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        super().__init__(detail)
        challenge = 'Bearer realm="broker"'
        if error is not None:
            safe = detail.replace('"', "'")
            challenge += f', error="{error}", error_description="{safe}"'
        self.headers = {"WWW-Authenticate": challenge}


class OAuthError(DomainError):
    """A token-endpoint failure, answered in the RFC 6749 §5.2 shape clients expect."""

    code = "oauth-error"
    title = "Token request refused"

    def __init__(
        self, error: str, detail: str, *, status: int = 400, retry_after: int | None = None
    ) -> None:
        super().__init__(detail)
        self.error = error
        self.http_status = status
        self.headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if status == 401:
            self.headers["WWW-Authenticate"] = 'Basic realm="broker"'
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_after)
