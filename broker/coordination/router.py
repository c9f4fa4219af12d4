import uuid
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from broker.auth.dependencies import Authenticated, PlatformAdmin, require_roles
from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.coordination import service as coordination
from broker.coordination.schemas import (
    DepartmentReadiness,
    EscalationSweep,
    OutstandingLineRead,
    ReadinessBoard,
)
from broker.kit.session import SessionDep
from broker.requests import service as requests
from broker.requests import transitions
from broker.requests.dependencies import Ctx
from broker.scenarios import service as scenarios
from core.time import utcnow

router = APIRouter(tags=["coordination"])
Format = Annotated[Literal["json", "csv"], Query(description="json or csv")]
BOARD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "The board; CSV on request"}
}


def _board_read(result: coordination.Board) -> ReadinessBoard:
    return ReadinessBoard(
        coverage=f"{result.ready}/{result.total} ready",
        ready=result.ready,
        total=result.total,
        departments=[
            DepartmentReadiness(
                department_code=r.department_code, department_name=r.department_name, **r.counts
            )
            for r in result.departments
        ],
        outstanding=[OutstandingLineRead(**asdict(o)) for o in result.outstanding],
    )


def _respond(result: coordination.Board, format: str) -> ReadinessBoard | Response:
    if format == "csv":
        return Response(coordination.board_csv(result), media_type="text/csv; charset=utf-8")
    return _board_read(result)


@router.get("/scenarios/{code}/readiness", response_model=ReadinessBoard, responses=BOARD_RESPONSES)
async def scenario_readiness(
    code: str, session: SessionDep, principal: Authenticated, format: Format = "json"
) -> ReadinessBoard | Response:
    """Per department: requested, available from platform copies, approved, pending, overdue,
    rejected and unregistered lines, overall coverage, and every outstanding line."""
    scenario = await scenarios.get(session=session, principal=principal, code=code)
    lines = await coordination.scenario_lines(session, scenario.id)
    return _respond(await coordination.board(session=session, lines=lines, now=utcnow()), format)


@router.get(
    "/requests/{request_id}/readiness", response_model=ReadinessBoard, responses=BOARD_RESPONSES
)
async def request_readiness(
    request_id: uuid.UUID, session: SessionDep, principal: Authenticated, format: Format = "json"
) -> ReadinessBoard | Response:
    """The request's board over the lines the caller may see: a steward's own lines only."""
    found = await requests.get_request(session=session, principal=principal, request_id=request_id)
    return _respond(
        await coordination.board(
            session=session, lines=requests.visible_lines(principal, found), now=utcnow()
        ),
        format,
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
) -> ReadinessBoard | Response:
    """Outstanding and escalated lines grouped by department, with age and due date."""
    now = utcnow()
    result = await coordination.board(
        session=session, lines=await coordination.agenda_lines(session), now=now
    )
    if format == "csv":
        return Response(coordination.agenda_csv(result), media_type="text/csv; charset=utf-8")
    if format == "markdown":
        return Response(
            coordination.agenda_markdown(result, now), media_type="text/markdown; charset=utf-8"
        )
    return _board_read(result)


@router.post("/coordination/escalations", response_model=EscalationSweep)
async def escalate_overdue_and_refused(ctx: Ctx, _admin: PlatformAdmin) -> EscalationSweep:
    """Move every overdue or refused line to coordination (as `broker escalate` does)."""
    moved = await transitions.escalate_sweep(ctx=ctx)
    return EscalationSweep(escalated=[line.id for line in moved])
