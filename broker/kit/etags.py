"""Small HTTP conventions shared by routers: ETags and If-Match."""

import re
from typing import Annotated, Any

from fastapi import Header

from core.errors import FieldError, InvalidInput, PreconditionRequired

# Versions are counters: 18 ASCII digits outlast any object; more, or "²" (which str.isdigit
# accepts and int() refuses), is not an ETag we issued.
_VERSION = re.compile(r"[0-9]{1,18}")


IfMatch = Annotated[
    str | None,
    Header(description="ETag from a GET; required (428 without it, 412 when stale)."),
]
# A 428 answer makes the refined OpenAPI document declare If-Match required.
PRECONDITIONS: dict[int | str, dict[str, Any]] = {
    412: {"description": "If-Match names a version that is no longer current; GET it again."},
    428: {"description": "If-Match is missing; send the ETag from your last GET."},
}


def etag_for(version: int) -> str:
    return f'"{version}"'


def version_from_if_match(if_match: str | None) -> int | None:
    """The version a client says it is changing, from an `If-Match: "N"` header."""
    if if_match is None:
        return None
    value = if_match.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not _VERSION.fullmatch(value):
        raise InvalidInput(
            "If-Match must carry the ETag returned by a previous GET.",
            errors=[FieldError("header.If-Match", 'Send the ETag unchanged, e.g. "3".')],
        )
    return int(value)


def required_version(if_match: str | None, *, what: str) -> int:
    """One rule for every versioned resource: an update names the version it changes.

    Without If-Match it is 428 (RFC 6585 §3), so that nobody's change is silently overwritten;
    a stale one is the service's 412.
    """
    version = version_from_if_match(if_match)
    if version is None:
        raise PreconditionRequired(
            f"Updating {what} needs If-Match with the ETag from your last GET, so that "
            "nobody's change is silently overwritten."
        )
    return version
