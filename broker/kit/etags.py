"""Small HTTP conventions shared by routers: ETags and If-Match."""

import re

from core.errors import FieldError, InvalidInput

# Versions are counters: 18 ASCII digits outlast any object; more, or "²" (which str.isdigit
# accepts and int() refuses), is not an ETag we issued.
_VERSION = re.compile(r"[0-9]{1,18}")


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
