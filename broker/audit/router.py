import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator

from broker.audit import service as audit
from broker.audit.dependencies import AuditActor
from broker.audit.export import ExportFormat, export_chunks
from broker.audit.schemas import AuditEventRead, ChainVerification, Checkpoint
from broker.audit.service import EventFilter
from broker.auth.dependencies import require_roles
from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.kit.idempotency import Idempotent
from broker.kit.pagination import (
    CursorInt,
    CursorQuery,
    LimitQuery,
    Page,
    decode_cursor,
    encode_cursor,
)
from broker.kit.session import SessionDep, writes_on_read
from core.errors import FieldError, InvalidInput

router = APIRouter(prefix="/audit", tags=["audit"])

AuditReader = Annotated[Principal, Depends(require_roles(Role.auditor, Role.platform_admin))]

_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _not_a_number(value: object) -> object:
    """Pydantic reads `0.5` as seconds since 1970; an instant here is ISO 8601 and nothing else."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("Give an ISO 8601 date-time, e.g. 2026-11-01T00:00:00Z, not a number.")
    return value


Instant = Annotated[datetime, BeforeValidator(_not_a_number)]


def event_filter(
    since: Annotated[
        Instant | None, Query(description="Events at or after this instant (ISO 8601).")
    ] = None,
    until: Annotated[
        Instant | None, Query(description="Events strictly before this instant (half-open).")
    ] = None,
    actor: Annotated[
        str | None, Query(max_length=200, description="Subject or client id of the actor.")
    ] = None,
    department: Annotated[
        str | None, Query(max_length=32, description="Actor's department code.")
    ] = None,
    action: Annotated[
        str | None,
        Query(max_length=64, description="Action prefix, e.g. `grant.` or `department.created`."),
    ] = None,
    object_type: Annotated[str | None, Query(max_length=32)] = None,
    object_id: Annotated[str | None, Query(max_length=200)] = None,
) -> EventFilter:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(
                f"{name} needs a time zone.",
                errors=[
                    FieldError(f"query.{name}", "Add Z or an offset, e.g. 2026-11-01T00:00:00Z.")
                ],
            )
    filters = EventFilter(
        since=since,
        until=until,
        actor=actor,
        department=department,
        action_prefix=action,
        object_type=object_type,
        object_id=object_id,
    )
    filters.check()
    return filters


Filters = Annotated[EventFilter, Depends(event_filter)]


class AuditEventPage(Page[AuditEventRead]):
    pass


@router.get("/events", response_model=AuditEventPage)
async def list_audit_events(
    session: SessionDep,
    _reader: AuditReader,
    filters: Filters,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> AuditEventPage:
    position = decode_cursor(cursor, keys={"seq": CursorInt})
    filters.after_seq = position["seq"] if position else None
    rows = await audit.list_events(session=session, filters=filters, limit=limit + 1)
    next_cursor = encode_cursor({"seq": rows[limit - 1].seq}) if len(rows) > limit else None
    return AuditEventPage(
        items=[AuditEventRead.of(e) for e in rows[:limit]], next_cursor=next_cursor
    )


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "JSON Lines (one event per line, then a trailer line) or CSV",
            "content": {"application/x-ndjson": {}, "text/csv": {}},
        }
    },
)
@writes_on_read  # registers the export in the audit chain first
async def export_audit_events(
    request: Request,
    session: SessionDep,
    _reader: AuditReader,
    actor: AuditActor,
    filters: Filters,
    format: Annotated[ExportFormat, Query(description="jsonl or csv")] = "jsonl",
) -> StreamingResponse:
    """Stream the matching events in chain order, with constant memory at any size."""
    await audit.register_export(session=session, actor=actor, format=format, filters=filters)
    read_factory = request.app.state.read_session_factory

    async def body() -> AsyncIterator[str]:
        async with read_factory() as read_session:
            async for chunk in export_chunks(session=read_session, filters=filters, format=format):
                yield chunk

    media = "application/x-ndjson" if format == "jsonl" else "text/csv"
    return StreamingResponse(
        body(),
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit.{format}"'},
    )


@router.get("/verify", response_model=ChainVerification)
async def verify_audit_chain(
    request: Request,
    _reader: AuditReader,
    checkpoint: Annotated[
        str | None,
        Query(max_length=4096, description="A checkpoint issued earlier; the chain must match it."),
    ] = None,
) -> ChainVerification:
    """Recompute the whole chain; report ok, or the first broken seq and what is wrong."""
    async with request.app.state.read_session_factory() as session:
        result = await audit.verify_chain(session=session, checkpoint=checkpoint)
    return ChainVerification.model_validate(vars(result))


@router.post("/checkpoints", response_model=Checkpoint, status_code=201)
async def create_audit_checkpoint(
    session: SessionDep, _reader: AuditReader, actor: AuditActor, idempotency: Idempotent
) -> Checkpoint:
    """Sign the chain head so a copy kept elsewhere can later expose any rewrite."""
    token, claims = await audit.checkpoint(session=session, actor=actor)
    result = Checkpoint(checkpoint=token, **claims)
    await idempotency.remember(result, status_code=201)
    return result
