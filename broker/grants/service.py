"""Grants: visible to both sides, revoked or suspended by the owner or the platform."""

import uuid
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit import service as audit
from broker.audit.service import Actor, AuditObject
from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.grants.models import Grant, GrantStatus
from core.errors import Conflict, Forbidden, NotFound


def may_see(principal: Principal, grant: Grant) -> bool:
    return (
        principal.is_platform_admin
        or Role.auditor in principal.roles
        or principal.department_id in (grant.grantee_department_id, grant.owner_department_id)
    )


async def get(*, session: AsyncSession, principal: Principal, grant_id: uuid.UUID) -> Grant:
    grant = await session.get(Grant, grant_id)
    if grant is None or not may_see(principal, grant):
        raise NotFound(f"No grant has the id '{grant_id}'.")
    return grant


async def list_visible(
    *, session: AsyncSession, principal: Principal, after: uuid.UUID | None, limit: int
) -> list[Grant]:
    query = select(Grant).order_by(Grant.id).limit(limit)
    if not (principal.is_platform_admin or Role.auditor in principal.roles):
        query = query.where(
            or_(
                Grant.grantee_department_id == principal.department_id,
                Grant.owner_department_id == principal.department_id,
            )
        )
    if after is not None:
        query = query.where(Grant.id > after)
    return list((await session.scalars(query)).all())


def _require_owner_or_platform(principal: Principal, grant: Grant) -> None:
    owner_steward = (
        Role.steward in principal.roles and principal.department_id == grant.owner_department_id
    )
    if not (owner_steward or principal.is_platform_admin):
        raise Forbidden("Only the owning department's stewards or a platform admin may do this.")


async def change_status(
    *,
    session: AsyncSession,
    principal: Principal,
    actor: Actor,
    grant: Grant,
    to: GrantStatus,
    reason: str,
    now: datetime,
) -> Grant:
    """Revoke (final), suspend or resume a grant, with the reason on record."""
    _require_owner_or_platform(principal, grant)
    current = grant.status_at(now)
    allowed = {
        GrantStatus.revoked: {GrantStatus.active, GrantStatus.suspended},
        GrantStatus.suspended: {GrantStatus.active},
        GrantStatus.active: {GrantStatus.suspended},
    }[to]
    if current not in allowed:
        raise Conflict(
            f"Grant {grant.id} is {current.value}; it cannot become {to.value}.",
            extra={"state": current.value},
        )
    grant.status, grant.status_reason = to, reason
    await session.flush()
    action = {
        GrantStatus.revoked: "grant.revoked",
        GrantStatus.suspended: "grant.suspended",
        GrantStatus.active: "grant.resumed",
    }[to]
    await audit.record(
        session, actor, action, AuditObject("grant", str(grant.id)), details={"reason": reason}
    )
    return grant
