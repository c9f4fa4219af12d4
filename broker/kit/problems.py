"""RFC 9457 problem documents: every error the API returns is shaped here and only here."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import (
    DomainError,
    OAuthError,
)

logger = logging.getLogger("broker.problems")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://broker.invalid/problems/"


_HTTP_CODES: dict[int, tuple[str, str, str]] = {
    400: ("bad-request", "Bad request", "The request could not be read; check its syntax."),
    404: ("not-found", "Not found", "No resource lives at this path; check the URL against /docs."),
    405: (
        "method-not-allowed",
        "Method not allowed",
        "This path does not accept that method; see the Allow header.",
    ),
    413: (
        "content-too-large",
        "Content too large",
        "The request body is larger than this endpoint accepts; send less data.",
    ),
    415: ("unsupported-media-type", "Unsupported media type", "Send application/json."),
}


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
    }
    request_id = getattr(request.state, "request_id", None)
    if request_id is not None:
        body["request_id"] = request_id
    if errors:
        body["errors"] = errors
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


DenialRecorder = Callable[[Request, DomainError], Awaitable[None]]


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    recorder: DenialRecorder | None = getattr(request.app.state, "denial_recorder", None)
    if exc.status == 403 and recorder is not None:
        await recorder(request, exc)
    if isinstance(exc, OAuthError):
        return JSONResponse(
            {"error": exc.error, "error_description": exc.detail},
            status_code=exc.http_status,
            headers=exc.headers,
        )
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        errors=[e.as_dict() for e in exc.errors],
        extra=exc.extra,
        headers=getattr(exc, "headers", None),
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        message = str(error.get("msg", "invalid value"))
        if error.get("type") == "json_invalid":
            message = f"Body is not valid JSON: {error.get('ctx', {}).get('error', message)}."
        elif error.get("type") == "extra_forbidden":
            message = "Unknown field; remove it (see the schema in /docs for allowed fields)."
        errors.append(
            {
                "location": _location(tuple(error.get("loc", ()))),
                "message": message,
                "type": str(error.get("type", "invalid")),
            }
        )
    return problem_response(
        request,
        status=422,
        code="validation-failed",
        title="Request validation failed",
        detail=f"{len(errors)} field(s) of the request are invalid; fix each one listed in errors.",
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, title, hint = _HTTP_CODES.get(
        exc.status_code, ("http-error", "HTTP error", "See the status code.")
    )
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else hint
    if exc.status_code in _HTTP_CODES and detail in {"Not Found", "Method Not Allowed"}:
        detail = hint
    return problem_response(
        request,
        status=exc.status_code,
        code=code,
        title=title,
        detail=detail,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    logger.info("integrity error on %s: %s", request.url.path, exc)
    return problem_response(
        request,
        status=409,
        code="conflict",
        title="Conflict",
        detail="The change conflicts with existing data (a duplicate or a missing reference); "
        "reload and try again.",
    )


async def _stale_error(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(
        request,
        status=412,
        code="precondition-failed",
        title="Precondition failed",
        detail="Someone else changed this object at the same moment; fetch it again and retry.",
    )


# PostgreSQL's deadlock_detected and serialization_failure; SQLite's busy once its timeout ran out.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
_TRANSIENT_SQLITE_ERRORS = frozenset({"SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT"})
RETRY_AFTER_SECONDS = 1


def _is_transient(exc: DBAPIError) -> bool:
    orig = exc.orig
    return (
        getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES
        or getattr(orig, "sqlite_errorname", None) in _TRANSIENT_SQLITE_ERRORS
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A transaction the database gave up on because of another one: nothing was changed.

    Answered 409 with Retry-After rather than retried here: the route commits once at its end,
    so a retry means running the whole request again, which the client can do safely and we
    cannot do generically (the body is consumed, idempotency and audit ran in the lost
    transaction).
    """
    assert isinstance(exc, DBAPIError)
    if not _is_transient(exc):
        return await _unexpected_error(request, exc)
    logger.info("transient database conflict on %s: %s", request.url.path, exc.orig)
    return problem_response(
        request,
        status=409,
        code="concurrent-update",
        title="Concurrent update",
        detail="Another request changed the same data at the same moment and this one was "
        f"rolled back; nothing was changed. Retry it after {RETRY_AFTER_SECONDS} second(s).",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        request,
        status=500,
        code="internal-error",
        title="Internal server error",
        detail="The broker failed to handle this request; nothing was changed. "
        "Quote the request_id when reporting it.",
    )


class LastResortMiddleware:
    """Answer an unexpected exception with the 500 problem and keep the connection usable.

    Starlette's own last resort (ServerErrorMiddleware) sends the same answer and then re-raises,
    and uvicorn closes a connection whose application raised after responding: the client's
    next keep-alive request was reset. A response already started can only be cut off.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            response = await _unexpected_error(Request(scope), exc)
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """The problem handlers and, as the innermost middleware, the last resort for the rest."""
    app.add_middleware(LastResortMiddleware)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(StaleDataError, _stale_error)
    app.add_exception_handler(Exception, _unexpected_error)
