import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from broker.audit.dependencies import AuditActor
from broker.auth.dependencies import Authenticated, require_roles
from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.grants import service
from broker.grants.models import Grant, GrantStatus
from broker.grants.schemas import GrantPage, GrantRead, Reason
from broker.kit.pagination import CursorId, CursorQuery, LimitQuery, decode_cursor, encode_cursor
from broker.kit.session import SessionDep
from core.time import utcnow

router = APIRouter(prefix="/grants", tags=["grants"])
OwnerOrPlatform = Annotated[Principal, Depends(require_roles(Role.steward, Role.platform_admin))]


def read(grant: Grant) -> GrantRead:
    return GrantRead(
        id=grant.id,
        line_id=grant.line_id,
        request_id=grant.request_id,
        scenario_id=grant.scenario_id,
        grantee_department_code=grant.grantee.code,
        owner_department_code=grant.owner.code,
        dataset_code=grant.dataset.code,
        columns=grant.columns,
        purpose=grant.purpose,
        conditions=grant.conditions,
        valid_from=grant.valid_from,
        valid_until=grant.valid_until,
        status=grant.status_at(utcnow()),
        status_reason=grant.status_reason,
        version=grant.version,
    )


@router.get("", response_model=GrantPage)
async def list_grants(
    session: SessionDep,
    principal: Authenticated,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> GrantPage:
    """Grants the caller's department received or gave."""
    position = decode_cursor(cursor, keys={"id": CursorId})
    rows = await service.list_visible(
        session=session,
        principal=principal,
        after=position["id"] if position else None,
        limit=limit + 1,
    )
    next_cursor = encode_cursor({"id": str(rows[limit - 1].id)}) if len(rows) > limit else None
    return GrantPage(items=[read(g) for g in rows[:limit]], next_cursor=next_cursor)


@router.get("/{grant_id}", response_model=GrantRead)
async def get_grant(
    grant_id: uuid.UUID, session: SessionDep, principal: Authenticated
) -> GrantRead:
    return read(await service.get(session=session, principal=principal, grant_id=grant_id))


async def _change(
    grant_id: uuid.UUID,
    body: Reason,
    session: SessionDep,
    principal: Principal,
    actor: AuditActor,
    to: GrantStatus,
) -> GrantRead:
    grant = await service.get(session=session, principal=principal, grant_id=grant_id)
    grant = await service.change_status(
        session=session,
        principal=principal,
        actor=actor,
        grant=grant,
        to=to,
        reason=body.reason,
        now=utcnow(),
    )
    return read(grant)


@router.post("/{grant_id}/revoke", response_model=GrantRead)
async def revoke_grant(
    grant_id: uuid.UUID,
    body: Reason,
    session: SessionDep,
    principal: OwnerOrPlatform,
    actor: AuditActor,
) -> GrantRead:
    """End a grant for good (the owner's stewards or a platform admin; a reason is required)."""
    return await _change(grant_id, body, session, principal, actor, GrantStatus.revoked)


@router.post("/{grant_id}/suspend", response_model=GrantRead)
async def suspend_grant(
    grant_id: uuid.UUID,
    body: Reason,
    session: SessionDep,
    principal: OwnerOrPlatform,
    actor: AuditActor,
) -> GrantRead:
    return await _change(grant_id, body, session, principal, actor, GrantStatus.suspended)


@router.post("/{grant_id}/resume", response_model=GrantRead)
async def resume_grant(
    grant_id: uuid.UUID,
    body: Reason,
    session: SessionDep,
    principal: OwnerOrPlatform,
    actor: AuditActor,
) -> GrantRead:
    return await _change(grant_id, body, session, principal, actor, GrantStatus.active)
