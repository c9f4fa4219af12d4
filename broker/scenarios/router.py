import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from broker.audit.dependencies import AuditActor
from broker.auth.dependencies import Authenticated, require_roles
from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.kit.idempotency import Idempotent
from broker.kit.pagination import (
    CursorId,
    CursorQuery,
    CursorText,
    LimitQuery,
    Page,
    decode_cursor,
    encode_cursor,
)
from broker.kit.session import SessionDep
from broker.scenarios import service
from broker.scenarios.models import Scenario, ScenarioMember
from broker.scenarios.schemas import (
    MemberCreate,
    MemberEnd,
    MemberRead,
    ScenarioCreate,
    ScenarioRead,
    ScenarioUpdate,
)
from core.time import utcnow

router = APIRouter(prefix="/scenarios", tags=["scenarios"])
Requester = Annotated[Principal, Depends(require_roles(Role.requester))]
# The lead department's requesters and stewards list the people; the service checks it is the lead.
Organiser = Annotated[
    Principal, Depends(require_roles(Role.requester, Role.steward, Role.platform_admin))
]


class ScenarioPage(Page[ScenarioRead]):
    pass


class MemberPage(Page[MemberRead]):
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
        ends_on=scenario.ends_on,
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
    """Rename, move to another phase, change the member departments or the planned end.

    Retiring a scenario is final and revokes its grants at once.
    """
    scenario = await service.get(session=session, principal=principal, code=code)
    scenario = await service.update(
        session=session, principal=principal, actor=actor, scenario=scenario, data=body
    )
    return read(scenario)


def member_read(member: ScenarioMember, scenario: Scenario, now: datetime) -> MemberRead:
    return MemberRead(
        id=member.id,
        scenario_code=scenario.code,
        account=member.account.name,
        display_name=member.account.display_name,
        department_code=member.account.department_code,
        kind=member.kind,
        acting_for_department_code=member.acting_for.code,
        valid_from=member.valid_from,
        valid_until=member.valid_until,
        active=member.active_at(now),
        added_by=member.added_by,
        created_at=member.created_at,
        ended_at=member.ended_at,
        ended_by=member.ended_by,
        end_reason=member.end_reason,
    )


@router.post("/{code}/members", response_model=MemberRead, status_code=status.HTTP_201_CREATED)
async def add_scenario_member(
    code: str,
    body: MemberCreate,
    session: SessionDep,
    principal: Organiser,
    actor: AuditActor,
    idempotency: Idempotent,
    response: Response,
) -> MemberRead:
    """List an account on the scenario (the lead department or the platform).

    A `member` is a person of the lead or a member department; a `contractor` is a person of an
    enterprise (开发公司), acting for the lead until `valid_until`. Only listed accounts and
    the lead's requesters download under the scenario's grants.
    """
    now = utcnow()
    scenario = await service.get(session=session, principal=principal, code=code)
    member = await service.add_member(
        session=session, principal=principal, actor=actor, scenario=scenario, data=body, now=now
    )
    result = member_read(member, scenario, now)
    location = f"/v1/scenarios/{scenario.code}/members/{member.id}"
    await idempotency.remember(result, status_code=201, headers={"Location": location})
    response.headers["Location"] = location
    return result


@router.get("/{code}/members", response_model=MemberPage)
async def list_scenario_members(
    code: str,
    session: SessionDep,
    principal: Authenticated,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> MemberPage:
    """Everyone listed on the scenario, current and ended (whoever may see the scenario)."""
    position = decode_cursor(cursor, keys={"id": CursorId})
    scenario = await service.get(session=session, principal=principal, code=code)
    rows = await service.list_members(
        session=session,
        scenario=scenario,
        after=position["id"] if position else None,
        limit=limit + 1,
    )
    next_cursor = encode_cursor({"id": str(rows[limit - 1].id)}) if len(rows) > limit else None
    now = utcnow()
    return MemberPage(
        items=[member_read(m, scenario, now) for m in rows[:limit]], next_cursor=next_cursor
    )


@router.get("/{code}/members/{member_id}", response_model=MemberRead)
async def get_scenario_member(
    code: str, member_id: uuid.UUID, session: SessionDep, principal: Authenticated
) -> MemberRead:
    scenario = await service.get(session=session, principal=principal, code=code)
    member = await service.get_member(session=session, scenario=scenario, member_id=member_id)
    return member_read(member, scenario, utcnow())


@router.post("/{code}/members/{member_id}/end", response_model=MemberRead)
async def end_scenario_member(
    code: str,
    member_id: uuid.UUID,
    body: MemberEnd,
    session: SessionDep,
    principal: Organiser,
    actor: AuditActor,
) -> MemberRead:
    """End an account's part at once (the lead department or the platform), with the reason."""
    now = utcnow()
    scenario = await service.get(session=session, principal=principal, code=code)
    member = await service.end_member(
        session=session,
        principal=principal,
        actor=actor,
        scenario=scenario,
        member_id=member_id,
        reason=body.reason,
        now=now,
    )
    return member_read(member, scenario, now)
