"""The application factory: everything the service needs is built here, nothing at import time."""

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from sqlalchemy import text
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker import migrations
from broker.accounts.router import account_imports_router, accounts_router, oauth_router
from broker.audit.dependencies import record_denial
from broker.audit.router import router as audit_router
from broker.auth.tokens import ExternalJwks
from broker.config import Settings
from broker.coordination.router import router as coordination_router
from broker.datasets.router import router as datasets_router
from broker.db import make_engine, make_read_session_factory, make_session_factory
from broker.delivery.router import router as delivery_router
from broker.delivery.storage import ReleaseStore, keep_staging_swept
from broker.departments.router import imports_router as department_imports_router
from broker.departments.router import router as departments_router
from broker.grants.router import router as grants_router
from broker.kit.allowed_methods import AllowedMethodsMiddleware
from broker.kit.heavy_work import HeavyWork
from broker.kit.idempotency import install_replay
from broker.kit.inputs import check_inputs
from broker.kit.openapi import serve_refined_openapi
from broker.kit.problems import install_error_handlers, problem_response
from broker.requests.router import router as requests_router
from broker.scenarios.router import router as scenarios_router
from broker.sheets.router import router as sheets_router

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Echo a caller's X-Request-ID (if sane) or mint one, so logs and audit events correlate."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == REQUEST_ID_HEADER.encode()),
            None,
        )
        request_id = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyTooLarge(StarletteHTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=413)


class BodyLimitMiddleware:
    """Refuse request bodies over the limit with a 413 problem, declared or streamed.

    Starlette's own limiter answers in plain text; ours raises an HTTP 413 that FastAPI passes to
    the one problem+json handler, and answers itself when the route never read the body.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, larger: list[tuple[re.Pattern[str], int]]
    ) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        self.larger = larger  # upload routes, with their own limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = next(
            (size for pattern, size in self.larger if pattern.match(scope["path"])),
            self.default_max_bytes,
        )
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        request = Request(scope)
        response = problem_response(
            request,
            status=413,
            code="content-too-large",
            title="Content too large",
            detail=f"The request body is over {limit} bytes; send less data.",
        )
        await response(scope, receive, send)


def operation_id(route: APIRoute) -> str:
    """The route function's name, so generated clients get `list_departments`, not `list_x_get`."""
    return route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = make_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with anyio.create_task_group() as background:
            background.start_soon(
                partial(
                    keep_staging_swept,
                    app.state.release_store,
                    every=settings.staging_sweep_interval_seconds,
                    older_than=settings.staging_max_age_seconds,
                )
            )
            try:
                yield
            finally:
                background.cancel_scope.cancel()
        await engine.dispose()

    # Docs assets are served by the broker itself: government networks often reach no CDN.
    app = FastAPIOffline(
        title="Data Resource Broker",
        version="0.1.0",
        summary="Find, request, approve, deliver and audit data between city departments.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        separate_input_output_schemas=False,
        dependencies=[Depends(check_inputs)],
    )
    serve_refined_openapi(app)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.read_session_factory = make_read_session_factory(engine)
    app.state.denial_recorder = record_denial
    app.state.release_store = ReleaseStore(settings.storage_root)
    app.state.heavy_work = HeavyWork(slots=settings.heavy_work_slots)
    app.state.external_jwks = ExternalJwks(settings) if settings.external_enabled else None
    install_error_handlers(app)
    install_replay(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        # multipart framing adds a little to the file itself
        larger=[
            (re.compile(r"^/v1/catalog/import$"), settings.max_import_bytes + 64 * 1024),
            (re.compile(r"^/v1/datasets/[^/]+/releases$"), settings.max_release_bytes + 64 * 1024),
        ],
    )
    app.add_middleware(AllowedMethodsMiddleware)
    app.add_middleware(RequestIdMiddleware)

    app.include_router(health_router())
    app.include_router(oauth_router)
    v1 = APIRouter(prefix="/v1")
    v1.include_router(departments_router)
    v1.include_router(accounts_router)
    v1.include_router(department_imports_router)
    v1.include_router(account_imports_router)
    v1.include_router(datasets_router)
    v1.include_router(sheets_router)
    v1.include_router(scenarios_router)
    v1.include_router(requests_router)
    v1.include_router(grants_router)
    v1.include_router(delivery_router)
    v1.include_router(coordination_router)
    v1.include_router(audit_router)
    app.include_router(v1)
    return app


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up and serving HTTP."""
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {"description": "Database unreachable or not migrated"}})
    async def readyz(request: Request) -> Any:
        """The database answers and its schema is at the newest migration."""
        settings: Settings = request.app.state.settings
        try:
            async with request.app.state.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            current = await migrations.current_revisions(request.app.state.engine)
        except Exception as exc:  # any failure to reach the database means "not ready"
            return problem_response(
                request,
                status=503,
                code="not-ready",
                title="Not ready",
                detail=f"The database is unreachable: {type(exc).__name__}.",
            )
        heads = migrations.head_revisions(settings)
        if current != heads:
            return problem_response(
                request,
                status=503,
                code="not-ready",
                title="Not ready",
                detail="The database schema is not at the newest migration; "
                "run `broker db upgrade`.",
                extra={"current": sorted(current), "head": sorted(heads)},
            )
        return JSONResponse({"status": "ready", "migration": sorted(current)})

    return router
