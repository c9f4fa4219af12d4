import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from broker.audit.dependencies import AuditActor
from broker.auth.dependencies import Authenticated, require_roles
from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.kit.idempotency import Idempotent
from broker.kit.pagination import (
    CursorId,
    CursorMoment,
    CursorQuery,
    LimitQuery,
    decode_cursor,
    encode_cursor,
)
from broker.kit.session import SessionDep
from broker.requests import service as engine
from broker.requests.models import Request as DataRequest
from broker.requests.models import RequestLine
from broker.requests.schemas import (
    Answer,
    BatchDecision,
    DecisionsApplied,
    EscalationSweep,
    InboxPage,
    LeaderDecision,
    LineRead,
    LinesAdd,
    LinesAdded,
    OwnerDecision,
    Reason,
    RequestCreate,
    RequestRead,
)
from core.time import utcnow

router = APIRouter(tags=["requests"])
Requester = Annotated[Principal, Depends(require_roles(Role.requester))]
Steward = Annotated[Principal, Depends(require_roles(Role.steward))]
Leader = Annotated[Principal, Depends(require_roles(Role.leader))]


def line_read(line: RequestLine, now: datetime, grant_id: uuid.UUID | None) -> LineRead:
    return LineRead(
        id=line.id,
        request_id=line.request_id,
        position=line.position,
        kind=line.kind,
        item_code=line.item.code if line.item else None,
        item_name=line.item.name if line.item else None,
        dataset_code=line.dataset.code if line.dataset else None,
        dataset_title=line.dataset.title if line.dataset else None,
        need=line.need,
        owner_department_code=line.owner.code,
        owner_department_name=line.owner.name,
        state=line.state,
        route_reason=line.route_reason,
        freshness_need=line.freshness_need,
        freshness_warning=line.freshness_warning,
        routed_at=line.routed_at,
        due_at=line.due_at,
        clock_basis=line.clock_basis,
        overdue=engine.is_overdue(line, now),
        question=line.question,
        answer=line.answer,
        awaiting_second_approval=line.pending_approval is not None,
        proposed_terms=engine.proposed_terms(line),
        conditions=line.conditions,
        declaration=line.declaration,
        reason=line.reason,
        grant_id=grant_id,
        version=line.version,
    )


async def request_read(session: SessionDep, request: DataRequest) -> RequestRead:
    now = utcnow()
    grants = await engine.grants_by_line(session, request.lines)
    return RequestRead(
        id=request.id,
        scenario_code=request.scenario.code,
        requesting_department_code=request.requesting_department.code,
        title=request.title,
        purpose=request.purpose,
        legal_basis=request.legal_basis,
        usage_start=request.usage_start,
        usage_end=request.usage_end,
        status=engine.request_status(request),
        submitted_at=request.submitted_at,
        created_by=request.created_by,
        created_at=request.created_at,
        lines=[line_read(line, now, grants.get(line.id)) for line in request.lines],
    )


def context(
    request: Request, session: SessionDep, principal: Authenticated, actor: AuditActor
) -> engine.Context:
    return engine.Context(
        session=session,
        principal=principal,
        actor=actor,
        settings=request.app.state.settings,
        now=utcnow(),
    )


Ctx = Annotated[engine.Context, Depends(context)]


async def _line_result(ctx: engine.Context, line: RequestLine) -> LineRead:
    await ctx.session.flush()
    grants = await engine.grants_by_line(ctx.session, [line])
    result = line_read(line, ctx.now, grants.get(line.id))
    await ctx.session.commit()
    return result


@router.post("/requests", response_model=RequestRead, status_code=status.HTTP_201_CREATED)
async def create_request(
    body: RequestCreate, ctx: Ctx, _requester: Requester, response: Response
) -> RequestRead:
    """A draft bundle: items, whole datasets or needs not yet in the catalog."""
    created = await engine.create_request(ctx, body)
    result = await request_read(ctx.session, created)
    await ctx.session.commit()
    response.headers["Location"] = f"/v1/requests/{created.id}"
    return result


@router.get("/requests/{request_id}", response_model=RequestRead)
async def get_request(
    request_id: uuid.UUID, session: SessionDep, principal: Authenticated
) -> RequestRead:
    found = await engine.get_request(session=session, principal=principal, request_id=request_id)
    return await request_read(session, found)


@router.post("/requests/{request_id}/lines", response_model=LinesAdded)
async def add_request_lines(
    request_id: uuid.UUID, body: LinesAdd, ctx: Ctx, _requester: Requester
) -> LinesAdded:
    """Add lines to a draft, or paste item codes in bulk; unknown codes are listed back."""
    found = await engine.get_request(
        session=ctx.session, principal=ctx.principal, request_id=request_id
    )
    added, unknown = await engine.add_lines(ctx, found, body.lines, body.item_codes)
    await ctx.session.commit()
    return LinesAdded(added=added, unknown_codes=unknown)


@router.post("/requests/{request_id}/submit", response_model=RequestRead)
async def submit_request(
    request_id: uuid.UUID, ctx: Ctx, _requester: Requester, idempotency: Idempotent
) -> RequestRead:
    """Route every line by policy. With an Idempotency-Key, a retry replays the first answer."""
    found = await engine.get_request(
        session=ctx.session, principal=ctx.principal, request_id=request_id
    )
    submitted = await engine.submit(ctx, found)
    result = await request_read(ctx.session, submitted)
    await idempotency.remember(result, status_code=200)
    return result


@router.get("/inbox", response_model=InboxPage)
async def inbox(
    session: SessionDep, principal: Steward, cursor: CursorQuery = None, limit: LimitQuery = 50
) -> InboxPage:
    """Lines waiting for the caller's department, oldest first, with due dates."""
    position = decode_cursor(cursor, keys={"t": CursorMoment, "i": CursorId})
    after = (position["t"], str(position["i"])) if position else None
    lines = await engine.inbox(session=session, principal=principal, after=after, limit=limit + 1)
    now = utcnow()
    next_cursor = None
    if len(lines) > limit:
        last = lines[limit - 1]
        assert last.routed_at is not None
        next_cursor = encode_cursor({"t": last.routed_at.isoformat(), "i": str(last.id)})
    return InboxPage(
        items=[line_read(line, now, None) for line in lines[:limit]], next_cursor=next_cursor
    )


@router.post("/lines/{line_id}/decisions", response_model=LineRead)
async def decide_line(
    line_id: uuid.UUID, body: OwnerDecision, ctx: Ctx, _steward: Steward
) -> LineRead:
    """approve, approve_with_conditions, needs_info, reject, not_held, or register a need."""
    line = await engine.get_line(
        session=ctx.session, principal=ctx.principal, line_id=line_id, for_update=True
    )
    await engine.decide(ctx, line, body)
    return await _line_result(ctx, line)


@router.post("/decisions", response_model=DecisionsApplied)
async def decide_lines(body: BatchDecision, ctx: Ctx, _steward: Steward) -> DecisionsApplied:
    """The same decision on many lines, all or nothing."""
    decision = OwnerDecision.model_validate(body.model_dump(exclude={"line_ids"}))
    lines = await engine.lock_lines(
        session=ctx.session, principal=ctx.principal, line_ids=body.line_ids
    )
    for line in lines:
        await engine.decide(ctx, line, decision)
    await ctx.session.flush()
    grants = await engine.grants_by_line(ctx.session, lines)
    result = DecisionsApplied(
        lines=[line_read(line, ctx.now, grants.get(line.id)) for line in lines]
    )
    await ctx.session.commit()
    return result


@router.post("/lines/{line_id}/answer", response_model=LineRead)
async def answer_line_question(
    line_id: uuid.UUID, body: Answer, ctx: Ctx, _requester: Requester
) -> LineRead:
    line = await engine.get_line(
        session=ctx.session, principal=ctx.principal, line_id=line_id, for_update=True
    )
    await engine.answer(ctx, line, body.answer)
    return await _line_result(ctx, line)


@router.post("/lines/{line_id}/accept", response_model=LineRead)
async def accept_line_conditions(line_id: uuid.UUID, ctx: Ctx, _requester: Requester) -> LineRead:
    line = await engine.get_line(
        session=ctx.session, principal=ctx.principal, line_id=line_id, for_update=True
    )
    await engine.accept_conditions(ctx, line)
    return await _line_result(ctx, line)


@router.post("/lines/{line_id}/decline", response_model=LineRead)
async def decline_line_conditions(line_id: uuid.UUID, ctx: Ctx, _requester: Requester) -> LineRead:
    line = await engine.get_line(
        session=ctx.session, principal=ctx.principal, line_id=line_id, for_update=True
    )
    await engine.decline_conditions(ctx, line)
    return await _line_result(ctx, line)


@router.post("/lines/{line_id}/withdraw", response_model=LineRead)
async def withdraw_line(line_id: uuid.UUID, ctx: Ctx, _requester: Requester) -> LineRead:
    line = await engine.get_line(
        session=ctx.session, principal=ctx.principal, line_id=line_id, for_update=True
    )
    await engine.withdraw(ctx, line)
    return await _line_result(ctx, line)


@router.post("/lines/{line_id}/escalate", response_model=LineRead)
async def escalate_line(
    line_id: uuid.UUID,
    body: Reason,
    ctx: Ctx,
    _caller: Annotated[Principal, Depends(require_roles(Role.requester, Role.platform_admin))],
) -> LineRead:
    """Send a refusal or an overdue line to coordination."""
    line = await engine.get_line(
        session=ctx.session, principal=ctx.principal, line_id=line_id, for_update=True
    )
    await engine.escalate(ctx, line, body.reason)
    return await _line_result(ctx, line)


@router.post("/lines/{line_id}/leader-decision", response_model=LineRead)
async def settle_escalated_line(
    line_id: uuid.UUID, body: LeaderDecision, ctx: Ctx, _leader: Leader
) -> LineRead:
    line = await engine.get_line(
        session=ctx.session, principal=ctx.principal, line_id=line_id, for_update=True
    )
    await engine.leader_decide(ctx, line, body)
    return await _line_result(ctx, line)


@router.post("/coordination/escalations", response_model=EscalationSweep)
async def escalate_overdue_and_refused(
    ctx: Ctx, _admin: Annotated[Principal, Depends(require_roles(Role.platform_admin))]
) -> EscalationSweep:
    """Move every overdue or refused line to coordination (as `broker escalate` does)."""
    moved = await engine.escalate_sweep(ctx)
    await ctx.session.commit()
    return EscalationSweep(escalated=[line.id for line in moved])
