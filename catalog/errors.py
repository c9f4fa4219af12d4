"""The domain error hierarchy.

Services raise these; `broker.errors` maps each to an RFC 9457 problem document in one place.
It lives in `catalog` so catalog services can raise them without importing `broker`.
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
