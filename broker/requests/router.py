import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from broker.auth.dependencies import Authenticated, require_roles
from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.grants import service as grants
from broker.grants.schemas import Reason
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
from broker.requests import policy, service, transitions
from broker.requests.dependencies import Ctx, LockedLine
from broker.requests.models import Request as DataRequest
from broker.requests.models import RequestLine
from broker.requests.schemas import (
    Answer,
    BatchDecision,
    Countersignature,
    DecisionsApplied,
    InboxPage,
    LeaderDecision,
    LineRead,
    LinesAdd,
    LinesAdded,
    OwnerDecision,
    RequestCreate,
    RequestRead,
)
from broker.requests.transitions import Context
from core.time import utcnow

router = APIRouter(tags=["requests"])
Requester = Annotated[Principal, Depends(require_roles(Role.requester))]
Steward = Annotated[Principal, Depends(require_roles(Role.steward))]
Leader = Annotated[Principal, Depends(require_roles(Role.leader))]


def line_read(line: RequestLine, now: datetime, grant_id: uuid.UUID | None) -> LineRead:
    return LineRead(
        id=line.id,
        request_id=line.request_id,
        scenario_code=line.request.scenario.code,
        requesting_department_code=line.request.requesting_department.code,
        purpose=line.request.purpose,
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
        overdue=policy.is_overdue(line, now),
        question=line.question,
        answer=line.answer,
        awaiting_second_approval=line.pending_approval is not None,
        proposed_terms=service.proposed_terms(line),
        conditions=line.conditions,
        masked_columns=service.masked_columns(line),
        declaration=line.declaration,
        reason=line.reason,
        refusal_basis=line.refusal_basis,
        grant_id=grant_id,
        version=line.version,
    )


async def lines_read(
    session: AsyncSession, lines: Sequence[RequestLine], now: datetime
) -> list[LineRead]:
    """The lines as they stand after the change, each with the grant it produced, if any."""
    await session.flush()
    grant_ids = await grants.ids_by_line(session=session, line_ids=[line.id for line in lines])
    return [line_read(line, now, grant_ids.get(line.id)) for line in lines]


async def line_result(ctx: Context, line: RequestLine) -> LineRead:
    """A line as the decision just taken on it left it."""
    return (await lines_read(ctx.session, [line], ctx.now))[0]


async def request_read(
    session: AsyncSession, principal: Principal, request: DataRequest
) -> RequestRead:
    """The request's header and the lines the caller may see (`service.visible_lines`)."""
    return RequestRead(
        id=request.id,
        scenario_code=request.scenario.code,
        requesting_department_code=request.requesting_department.code,
        title=request.title,
        purpose=request.purpose,
        legal_basis=request.legal_basis,
        usage_start=request.usage_start,
        usage_end=request.usage_end,
        status=service.request_status(request),
        submitted_at=request.submitted_at,
        created_by=request.created_by,
        created_at=request.created_at,
        lines=await lines_read(session, service.visible_lines(principal, request), utcnow()),
    )


@router.post("/requests", response_model=RequestRead, status_code=status.HTTP_201_CREATED)
async def create_request(
    body: RequestCreate,
    ctx: Ctx,
    _requester: Requester,
    idempotency: Idempotent,
    response: Response,
) -> RequestRead:
    """A draft bundle: items, whole datasets or needs not yet in the catalog."""
    created = await service.create_request(ctx=ctx, data=body)
    location = f"/v1/requests/{created.id}"
    result = await request_read(ctx.session, ctx.principal, created)
    await idempotency.remember(result, status_code=201, headers={"Location": location})
    response.headers["Location"] = location
    return result


@router.get("/requests/{request_id}", response_model=RequestRead)
async def get_request(
    request_id: uuid.UUID, session: SessionDep, principal: Authenticated
) -> RequestRead:
    found = await service.get_request(session=session, principal=principal, request_id=request_id)
    return await request_read(session, principal, found)


@router.post("/requests/{request_id}/lines", response_model=LinesAdded)
async def add_request_lines(
    request_id: uuid.UUID, body: LinesAdd, ctx: Ctx, _requester: Requester
) -> LinesAdded:
    """Add lines to a draft, or paste item codes in bulk; unknown codes are listed back."""
    found = await service.get_request(
        session=ctx.session, principal=ctx.principal, request_id=request_id
    )
    added, unknown = await service.add_lines(
        ctx=ctx, request=found, specs=body.lines, item_codes=body.item_codes
    )
    return LinesAdded(added=added, unknown_codes=unknown)


@router.post("/requests/{request_id}/submit", response_model=RequestRead)
async def submit_request(
    request_id: uuid.UUID, ctx: Ctx, _requester: Requester, idempotency: Idempotent
) -> RequestRead:
    """Route every line by policy. With an Idempotency-Key, a retry replays the first answer."""
    found = await service.get_request(
        session=ctx.session, principal=ctx.principal, request_id=request_id
    )
    submitted = await service.submit(ctx=ctx, request=found)
    result = await request_read(ctx.session, ctx.principal, submitted)
    await idempotency.remember(result, status_code=200)
    return result


@router.get("/inbox", response_model=InboxPage)
async def inbox(
    session: SessionDep, principal: Steward, cursor: CursorQuery = None, limit: LimitQuery = 50
) -> InboxPage:
    """Lines waiting for the caller's department, oldest first, with due dates; a platform
    steward also sees every leader's decision awaiting its countersignature."""
    position = decode_cursor(cursor, keys={"t": CursorMoment, "i": CursorId})
    after = (position["t"], str(position["i"])) if position else None
    lines = await service.inbox(session=session, principal=principal, after=after, limit=limit + 1)
    now = utcnow()
    next_cursor = None
    if len(lines) > limit:
        last = lines[limit - 1]
        next_cursor = encode_cursor(
            {"t": service.inbox_position(last).isoformat(), "i": str(last.id)}
        )
    return InboxPage(
        items=[line_read(line, now, None) for line in lines[:limit]], next_cursor=next_cursor
    )


# The role dependency comes before LockedLine in each signature: a caller without the role is
# refused (403) before any line is looked up; the line is locked only once the body is valid.


@router.post("/lines/{line_id}/decisions", response_model=LineRead)
async def decide_line(
    body: OwnerDecision, ctx: Ctx, _steward: Steward, lock: LockedLine
) -> LineRead:
    """approve, approve_with_conditions, needs_info, reject, not_held, or register a need."""
    line = await lock()
    await transitions.decide(ctx=ctx, line=line, decision=body)
    return await line_result(ctx, line)


@router.post("/decisions", response_model=DecisionsApplied)
async def decide_lines(body: BatchDecision, ctx: Ctx, _steward: Steward) -> DecisionsApplied:
    """The same decision on many lines, all or nothing."""
    decision = OwnerDecision.model_validate(body.model_dump(exclude={"line_ids"}))
    lines = await service.lock_lines(
        session=ctx.session, principal=ctx.principal, line_ids=body.line_ids
    )
    for line in lines:
        await transitions.decide(ctx=ctx, line=line, decision=decision)
    return DecisionsApplied(lines=await lines_read(ctx.session, lines, ctx.now))


@router.post("/lines/{line_id}/answer", response_model=LineRead)
async def answer_line_question(
    body: Answer, ctx: Ctx, _requester: Requester, lock: LockedLine
) -> LineRead:
    line = await lock()
    await transitions.answer(ctx=ctx, line=line, text=body.answer)
    return await line_result(ctx, line)


@router.post("/lines/{line_id}/accept", response_model=LineRead)
async def accept_line_conditions(ctx: Ctx, _requester: Requester, lock: LockedLine) -> LineRead:
    line = await lock()
    await transitions.accept_conditions(ctx=ctx, line=line)
    return await line_result(ctx, line)


@router.post("/lines/{line_id}/decline", response_model=LineRead)
async def decline_line_conditions(ctx: Ctx, _requester: Requester, lock: LockedLine) -> LineRead:
    line = await lock()
    await transitions.decline_conditions(ctx=ctx, line=line)
    return await line_result(ctx, line)


@router.post("/lines/{line_id}/withdraw", response_model=LineRead)
async def withdraw_line(ctx: Ctx, _requester: Requester, lock: LockedLine) -> LineRead:
    line = await lock()
    await transitions.withdraw(ctx=ctx, line=line)
    return await line_result(ctx, line)


@router.post("/lines/{line_id}/escalate", response_model=LineRead)
async def escalate_line(
    body: Reason,
    ctx: Ctx,
    _caller: Annotated[Principal, Depends(require_roles(Role.requester, Role.platform_admin))],
    lock: LockedLine,
) -> LineRead:
    """Send a refusal or an overdue line to coordination."""
    line = await lock()
    await transitions.escalate(ctx=ctx, line=line, reason=body.reason)
    return await line_result(ctx, line)


@router.post("/lines/{line_id}/leader-decision", response_model=LineRead)
async def settle_escalated_line(
    body: LeaderDecision, ctx: Ctx, _leader: Leader, lock: LockedLine
) -> LineRead:
    line = await lock()
    await transitions.leader_decide(ctx=ctx, line=line, decision=body)
    return await line_result(ctx, line)


@router.post("/lines/{line_id}/countersignature", response_model=LineRead)
async def countersign_leader_decision(
    body: Countersignature, ctx: Ctx, _steward: Steward, lock: LockedLine
) -> LineRead:
    """A platform steward countersigns (the grant is issued) or refuses (the line is refused for
    good) a leader's approval of L4 or important-grade data; not the leader who decided."""
    line = await lock()
    await transitions.countersign(ctx=ctx, line=line, decision=body)
    return await line_result(ctx, line)
