"""Keyset cursors: opaque to clients, a small JSON position to us."""

import base64
import binascii
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from catalog.errors import FieldError, InvalidInput

MAX_LIMIT = 200
DEFAULT_LIMIT = 50

T = TypeVar("T")

LimitQuery = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Page size, at most {MAX_LIMIT}.")
]
CursorQuery = Annotated[
    str | None,
    Query(
        max_length=512, description="The `next_cursor` of the previous page; omit for the first."
    ),
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, keys: set[str]) -> dict[str, Any] | None:
    """The position a cursor names; a cursor we did not issue is a 422, never a 500."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        position = None
    if not isinstance(position, dict) or set(position) != keys:
        raise InvalidInput(
            "The cursor is not one this endpoint issued.",
            errors=[
                FieldError(
                    "query.cursor",
                    "Pass the next_cursor of a previous page unchanged, or omit it.",
                    "invalid_cursor",
                )
            ],
        )
    return position
