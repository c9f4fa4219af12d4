import uuid
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from broker.auth.dependencies import Authenticated, PlatformAdmin, require_roles
from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.coordination import service as coordination
from broker.coordination.schemas import (
    Blocking,
    BlockingLineRead,
    DeliveriesPage,
    DeliveryAwaitingRead,
    DepartmentReadiness,
    EscalationSweep,
    OutstandingLineRead,
    OverdueDeliveryRead,
    ReadinessBoard,
)
from broker.delivery import progress
from broker.kit.pagination import (
    CursorId,
    CursorMoment,
    CursorQuery,
    LimitQuery,
    decode_cursor,
    encode_cursor,
)
from broker.kit.session import SessionDep
from broker.requests import service as requests
from broker.requests import transitions
from broker.requests.dependencies import Ctx
from broker.scenarios import service as scenarios
from core.time import utcnow

router = APIRouter(tags=["coordination"])
Steward = Annotated[Principal, Depends(require_roles(Role.steward))]
Format = Annotated[
    Literal["json", "csv", "xlsx"],
    Query(
        description="json, csv or xlsx (one row per department and a TOTAL row, for a spreadsheet)"
    ),
]
# Downloads meant for people open in Excel on Chinese Windows: UTF-8 with a byte order mark.
Bom = Annotated[
    bool,
    Query(
        description="CSV only: start with a UTF-8 byte order mark (the default), so Excel on "
        "Chinese Windows shows the names as Chinese; `false` for machines."
    ),
]
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOARD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {}, XLSX_TYPE: {}},
        "description": "The board; CSV or XLSX on request",
    }
}


def _blocking_read(blocking: dict[str, list[coordination.BlockingLine]]) -> Blocking:
    return Blocking.model_validate(
        {step: [BlockingLineRead(**asdict(b)) for b in held] for step, held in blocking.items()}
    )


def _board_read(result: coordination.Board) -> ReadinessBoard:
    return ReadinessBoard(
        coverage=f"{result.ready}/{result.total} ready",
        ready=result.ready,
        total=result.total,
        requested=result.step_total("requested"),
        granted=result.step_total("granted"),
        delivered=result.step_total("delivered"),
        fresh=result.step_total("fresh"),
        delivery_overdue=result.step_total("delivery_overdue"),
        departments=[
            DepartmentReadiness(
                department_code=r.department_code,
                department_name=r.department_name,
                blocking=_blocking_read(r.blocking),
                **r.counts,
            )
            for r in result.departments
        ],
        blocking=_blocking_read(result.blocking()),
        outstanding=[OutstandingLineRead(**asdict(o)) for o in result.outstanding],
        overdue_deliveries=[OverdueDeliveryRead(**asdict(o)) for o in result.overdue_deliveries],
    )


def _attachment(content: bytes, media_type: str, filename: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _respond(
    result: coordination.Board, format: str, *, bom: bool, name: str
) -> ReadinessBoard | Response:
    if format == "csv":
        return _attachment(coordination.board_csv(result, bom=bom), CSV_TYPE, f"{name}.csv")
    if format == "xlsx":
        return _attachment(coordination.board_xlsx(result), XLSX_TYPE, f"{name}.xlsx")
    return _board_read(result)


@router.get("/scenarios/{code}/readiness", response_model=ReadinessBoard, responses=BOARD_RESPONSES)
async def scenario_readiness(
    code: str,
    session: SessionDep,
    principal: Authenticated,
    format: Format = "json",
    bom: Bom = True,
) -> ReadinessBoard | Response:
    """Per department and overall: requested, available from platform copies, approved, pending,
    overdue, rejected and unregistered lines; then granted, delivered (the grant downloads) and
    fresh, with the lines blocking each step; overall coverage and every outstanding line.

    Counts cover the whole scenario. Lines are named only to whoever may see them: the lead
    department, the people listed on the scenario, the platform, leaders and auditors see every
    line, a requesting department its requests' lines; a member department's steward otherwise
    sees only the lines its department owns."""
    now = utcnow()
    scenario = await scenarios.get(session=session, principal=principal, code=code)
    held = await scenarios.memberships(
        session=session, account_id=principal.account_id, scenario_id=scenario.id
    )
    whole = principal.department_id == scenario.lead_department_id or any(
        m.active_at(now) for m in held
    )
    lines = await coordination.scenario_lines(session, scenario.id)
    result = await coordination.board(
        session=session,
        lines=lines,
        now=now,
        may_see=lambda line: requests.may_see_line(principal, line, sees_scenario_whole=whole),
    )
    return _respond(result, format, bom=bom, name=f"readiness-{scenario.code}")


@router.get(
    "/requests/{request_id}/readiness", response_model=ReadinessBoard, responses=BOARD_RESPONSES
)
async def request_readiness(
    request_id: uuid.UUID,
    session: SessionDep,
    principal: Authenticated,
    format: Format = "json",
    bom: Bom = True,
) -> ReadinessBoard | Response:
    """The request's board over the lines the caller may see: a steward's own lines only."""
    found = await requests.get_request(session=session, principal=principal, request_id=request_id)
    return _respond(
        await coordination.board(
            session=session, lines=requests.visible_lines(principal, found), now=utcnow()
        ),
        format,
        bom=bom,
        name=f"readiness-{found.id}",
    )


@router.get(
    "/coordination/agenda",
    response_model=ReadinessBoard,
    responses={
        200: {"content": {"text/csv": {}, "text/markdown": {}}, "description": "The agenda"}
    },
)
async def coordination_agenda(
    session: SessionDep,
    _caller: Annotated[Principal, Depends(require_roles(Role.platform_admin, Role.leader))],
    format: Annotated[Literal["json", "csv", "markdown"], Query()] = "json",
    bom: Bom = True,
) -> ReadinessBoard | Response:
    """Outstanding and escalated lines grouped by department, with age and due date, and every
    grant whose first release is past the owner's delivery clock."""
    now = utcnow()
    result = await coordination.agenda(session=session, now=now)
    if format == "csv":
        return _attachment(
            coordination.agenda_csv(result, bom=bom),
            CSV_TYPE,
            f"agenda-{now.date().isoformat()}.csv",
        )
    if format == "markdown":
        return Response(
            coordination.agenda_markdown(result, now), media_type="text/markdown; charset=utf-8"
        )
    return _board_read(result)


@router.post("/coordination/escalations", response_model=EscalationSweep)
async def escalate_overdue_and_refused(ctx: Ctx, _admin: PlatformAdmin) -> EscalationSweep:
    """Move every overdue or refused line to coordination, and mark every overdue delivery as
    escalated (as `broker escalate` does)."""
    moved = await transitions.escalate_sweep(ctx=ctx)
    late = await progress.escalate_overdue(session=ctx.session, actor=ctx.actor, now=ctx.now)
    return EscalationSweep(
        escalated=[line.id for line in moved], deliveries_escalated=[g.id for g in late]
    )


@router.get("/inbox/deliveries", response_model=DeliveriesPage, tags=["inbox"])
async def deliveries_inbox(
    session: SessionDep,
    principal: Steward,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> DeliveriesPage:
    """Grants the caller's department owes a first release, the soonest due first, each with
    its grantee, scenario, purpose and delivery clock. Here rather than in `/v1/inbox`: whether
    a grant is delivered is a question about releases, which the requests layer does not read."""
    now = utcnow()
    position = decode_cursor(cursor, keys={"t": CursorMoment, "i": CursorId})
    grants = await progress.awaiting(
        session=session,
        owner_department_id=principal.department_id,
        now=now,
        after=(position["t"], position["i"]) if position else None,
        limit=limit + 1,
    )
    page = grants[:limit]
    codes = {
        scenario_id: (await scenarios.get_by_id(session=session, scenario_id=scenario_id)).code
        for scenario_id in {g.scenario_id for g in page}
    }
    items = []
    for grant in page:
        assert grant.delivery_due_at is not None
        items.append(
            DeliveryAwaitingRead(
                grant_id=grant.id,
                line_id=grant.line_id,
                dataset_code=grant.dataset.code,
                dataset_title=grant.dataset.title,
                columns=grant.columns,
                grantee_code=grant.grantee.code,
                grantee_name=grant.grantee.name,
                scenario_code=codes[grant.scenario_id],
                purpose=grant.purpose,
                delivery_due_at=grant.delivery_due_at,
                overdue=progress.is_overdue(grant, now),
                escalated_at=grant.delivery_escalated_at,
            )
        )
    next_cursor = None
    if len(grants) > limit:
        last = page[-1]
        assert last.delivery_due_at is not None
        next_cursor = encode_cursor({"t": last.delivery_due_at.isoformat(), "i": str(last.id)})
    return DeliveriesPage(items=items, next_cursor=next_cursor)
