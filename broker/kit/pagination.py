"""Keyset cursors: opaque to clients, a small JSON position to us."""

import base64
import binascii
import functools
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, TypeAdapter, ValidationError

from broker.kit.inputs import refuse_control_characters
from core.errors import FieldError, InvalidInput

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

# The value types a cursor position may hold (read as strict JSON), each bounded to what the
# database and the clock compare without overflow: a position that does not fit is not ours.
CursorText = Annotated[str, Field(max_length=256), AfterValidator(refuse_control_characters)]
CursorInt = Annotated[int, Field(ge=0, le=2**63 - 1)]
CursorScore = Annotated[float, Field(allow_inf_nan=False)]
CursorMoment = Annotated[
    AwareDatetime,
    Field(ge=datetime(1900, 1, 2, tzinfo=UTC), le=datetime(9998, 12, 31, tzinfo=UTC)),
]
CursorId = uuid.UUID
CursorSpec = Mapping[str, Any]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@functools.cache
def _adapter(value_type: Any) -> TypeAdapter[Any]:
    return TypeAdapter(value_type)


def decode_cursor(cursor: str | None, *, keys: CursorSpec) -> dict[str, Any] | None:
    """The position a cursor names, each value of the type `keys` gives for it.

    A cursor we did not issue (not our encoding, other keys, a value of the wrong type or out of
    range) is a 422 `invalid_cursor`, never a 500 from the query it would have fed.
    """
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        position = None
    if isinstance(position, dict) and set(position) == set(keys):
        try:
            return {
                key: _adapter(value_type).validate_json(json.dumps(position[key]), strict=True)
                for key, value_type in keys.items()
            }
        except ValidationError:
            pass
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
