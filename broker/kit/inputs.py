"""Input the broker refuses on every route: control characters and numbers that are not numbers.

PostgreSQL refuses U+0000 in text (the driver fails, a 500) while SQLite stores it; no other C0
control character is text a person typed either, and lone surrogates (U+D800..U+DFFF) cannot be
written as UTF-8 at all. Tab, line feed and carriage return are allowed everywhere: multi-line
text arrives with CRLF from Windows clients and from every HTML form. NaN, Infinity and numbers
that overflow to it (1e999), which Python's JSON parser accepts, are refused in JSON bodies:
PostgreSQL's jsonb cannot hold them and no rule of the catalog computes with them.

`check_inputs` runs before every route (an application dependency, so the one problem handler
answers): the decoded path, query parameters, the headers routes read as text, url-encoded and
multipart form fields (not file contents) and JSON bodies. The token endpoint answers in the
RFC 6749 §5.2 shape its clients expect, `invalid_request`, instead of a problem document.
"""

import base64
import binascii
import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl, unquote

from fastapi import Request

from core.errors import FieldError, InvalidInput, OAuthError

FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
TEXT_HEADERS = ("If-Match", "Idempotency-Key")
RFC6749_PATHS = frozenset({"/oauth/token"})
MAX_REPORTED = 20

CONTROL = "control_character"
NON_FINITE = "non_finite_number"
_FIX = {
    CONTROL: "Remove control characters; only tab, line feed and carriage return are allowed.",
    NON_FINITE: "Send a finite number; NaN and Infinity are not accepted.",
}


def refuse_control_characters(value: str) -> str:
    """A pydantic validator for text that bypasses `check_inputs` (e.g. inside a cursor)."""
    if FORBIDDEN.search(value):
        raise ValueError(_FIX[CONTROL])
    return value


def _printable(name: str) -> str:
    return FORBIDDEN.sub("?", name)


def _walk_json(document: Any) -> list[FieldError]:
    """Every string (key or value) with a forbidden character and every non-finite number."""
    found: list[FieldError] = []
    pending: list[tuple[str, Any]] = [("body", document)]
    while pending and len(found) < MAX_REPORTED:
        location, value = pending.pop()
        if isinstance(value, str):
            if FORBIDDEN.search(value):
                found.append(FieldError(location, _FIX[CONTROL], CONTROL))
        elif isinstance(value, float):
            if not math.isfinite(value):
                found.append(FieldError(location, _FIX[NON_FINITE], NON_FINITE))
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                inner = f"{location}.{_printable(key)}"
                if FORBIDDEN.search(key):
                    found.append(FieldError(inner, _FIX[CONTROL], CONTROL))
                pending.append((inner, item))
        elif isinstance(value, list):
            pending.extend(
                (f"{location}.{n}", item) for n, item in reversed(list(enumerate(value)))
            )
    return found


def _pairs(prefix: str, pairs: list[tuple[str, str]]) -> list[FieldError]:
    return [
        FieldError(f"{prefix}.{_printable(key)}", _FIX[CONTROL], CONTROL)
        for key, value in pairs
        if FORBIDDEN.search(key) or FORBIDDEN.search(value)
    ]


def _basic_credentials_text(authorization: str) -> str:
    """What HTTP Basic credentials decode to, as the token endpoint reads them; "" if unreadable."""
    if not authorization.lower().startswith("basic "):
        return ""
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return unquote(decoded)


def _head(request: Request) -> list[FieldError]:
    found: list[FieldError] = []
    if FORBIDDEN.search(request.scope["path"]):
        found.append(FieldError("path", _FIX[CONTROL], CONTROL))
    query = request.scope.get("query_string", b"").decode("latin-1")
    found += _pairs("query", parse_qsl(query, keep_blank_values=True))
    for name in TEXT_HEADERS:
        value = request.headers.get(name)
        if value is not None and FORBIDDEN.search(value):
            found.append(FieldError(f"header.{name}", _FIX[CONTROL], CONTROL))
    if FORBIDDEN.search(_basic_credentials_text(request.headers.get("authorization", ""))):
        found.append(FieldError("header.Authorization", _FIX[CONTROL], CONTROL))
    return found


async def _body(request: Request) -> list[FieldError]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        raw = await request.body()
        try:
            document = json.loads(raw) if raw else None
        except (ValueError, RecursionError):
            return []  # not JSON: the route's own parsing says so
        return _walk_json(document)
    if media_type == "application/x-www-form-urlencoded":
        text = (await request.body()).decode("utf-8", errors="replace")
        return _pairs("form", parse_qsl(text, keep_blank_values=True))
    if media_type == "multipart/form-data":
        form = await request.form()
        found: list[FieldError] = []
        for key, value in form.multi_items():
            text = value if isinstance(value, str) else (value.filename or "")
            if FORBIDDEN.search(key) or FORBIDDEN.search(text):
                found.append(FieldError(f"form.{_printable(key)}", _FIX[CONTROL], CONTROL))
        return found
    return []


async def check_inputs(request: Request) -> None:
    """Refuse a request whose text holds control characters or whose JSON holds NaN/Infinity."""
    found = _head(request) + await _body(request)
    if not found:
        return
    if request.scope["path"] in RFC6749_PATHS:
        where = found[0].location.encode("ascii", "replace").decode()
        raise OAuthError("invalid_request", f"{where}: {found[0].message}")
    raise InvalidInput(
        f"{len(found)} field(s) hold characters or numbers the broker does not accept.",
        errors=found[:MAX_REPORTED],
    )
