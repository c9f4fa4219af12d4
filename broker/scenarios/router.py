from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from broker.audit.dependencies import AuditActor
from broker.auth.dependencies import Authenticated, require_roles
from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.kit.idempotency import Idempotent
from broker.kit.pagination import (
    CursorQuery,
    CursorText,
    LimitQuery,
    Page,
    decode_cursor,
    encode_cursor,
)
from broker.kit.session import SessionDep
from broker.scenarios import service
from broker.scenarios.models import Scenario
from broker.scenarios.schemas import ScenarioCreate, ScenarioRead, ScenarioUpdate

router = APIRouter(prefix="/scenarios", tags=["scenarios"])
Requester = Annotated[Principal, Depends(require_roles(Role.requester))]


class ScenarioPage(Page[ScenarioRead]):
    pass


def read(scenario: Scenario) -> ScenarioRead:
    return ScenarioRead(
        id=scenario.id,
        code=scenario.code,
        name=scenario.name,
        description=scenario.description,
        lead_department_code=scenario.lead.code,
        phase=scenario.phase,
        members=scenario.members,
        version=scenario.version,
        created_at=scenario.created_at,
        updated_at=scenario.updated_at,
    )


@router.post("", response_model=ScenarioRead, status_code=status.HTTP_201_CREATED)
async def create_scenario(
    body: ScenarioCreate,
    session: SessionDep,
    principal: Requester,
    actor: AuditActor,
    idempotency: Idempotent,
    response: Response,
) -> ScenarioRead:
    """A scenario led by the caller's department."""
    scenario = await service.create(session=session, principal=principal, actor=actor, data=body)
    result = read(scenario)
    location = f"/v1/scenarios/{scenario.code}"
    await idempotency.remember(result, status_code=201, headers={"Location": location})
    response.headers["Location"] = location
    return result


@router.get("", response_model=ScenarioPage)
async def list_scenarios(
    session: SessionDep,
    principal: Authenticated,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> ScenarioPage:
    position = decode_cursor(cursor, keys={"code": CursorText})
    rows = await service.list_visible(
        session=session,
        principal=principal,
        after=position["code"] if position else None,
        limit=limit + 1,
    )
    next_cursor = encode_cursor({"code": rows[limit - 1].code}) if len(rows) > limit else None
    return ScenarioPage(items=[read(s) for s in rows[:limit]], next_cursor=next_cursor)


@router.get("/{code}", response_model=ScenarioRead)
async def get_scenario(code: str, session: SessionDep, principal: Authenticated) -> ScenarioRead:
    return read(await service.get(session=session, principal=principal, code=code))


@router.patch("/{code}", response_model=ScenarioRead)
async def update_scenario(
    code: str, body: ScenarioUpdate, session: SessionDep, principal: Requester, actor: AuditActor
) -> ScenarioRead:
    """Rename, move to another phase, or change the member departments."""
    scenario = await service.get(session=session, principal=principal, code=code)
    scenario = await service.update(
        session=session, principal=principal, actor=actor, scenario=scenario, data=body
    )
    return read(scenario)
