"""Whether the data a grant promises has arrived: the owner's side of "ready means delivered".

The owner has delivered for a grant once the grant's dataset has an accepted release, of either
copy (the owner's or the platform's): downloads serve the latest of them, and an accepted release
was validated against every item of the dataset's contract, so it holds the grant's columns. The
delivery clock, the owner's inbox and the readiness board all ask this one question.
"""

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit import service as audit
from broker.audit.service import Actor, AuditObject
from broker.delivery.models import Release, ReleaseStatus
from broker.grants.models import Grant, GrantStatus


async def released_datasets(
    *, session: AsyncSession, dataset_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """The datasets among these with at least one accepted release."""
    ids = set(dataset_ids)
    if not ids:
        return set()
    rows = await session.scalars(
        select(Release.dataset_id)
        .where(Release.dataset_id.in_(ids), Release.status == ReleaseStatus.accepted)
        .distinct()
    )
    return set(rows.all())


def _owed(now: datetime) -> list[ColumnElement[bool]]:
    """A grant whose owner still owes its first release: in force (active and not past its end),
    its dataset without any accepted release."""
    return [
        Grant.status == GrantStatus.active,
        Grant.valid_until > now,
        Grant.delivery_due_at.is_not(None),
        ~exists().where(
            Release.dataset_id == Grant.dataset_id, Release.status == ReleaseStatus.accepted
        ),
    ]


def is_overdue(grant: Grant, now: datetime) -> bool:
    """Past its delivery clock; call only for a grant still owed."""
    return grant.delivery_due_at is not None and now > grant.delivery_due_at


async def overdue(*, session: AsyncSession, now: datetime) -> list[Grant]:
    """Grants in force whose first release is past its delivery clock, the longest due first."""
    query = (
        select(Grant)
        .where(*_owed(now), Grant.delivery_due_at < now)
        .order_by(Grant.delivery_due_at, Grant.id)
    )
    return list((await session.scalars(query)).unique())


async def awaiting(
    *,
    session: AsyncSession,
    owner_department_id: uuid.UUID,
    now: datetime,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Grant]:
    """The owner's grants still waiting for a first release, the soonest due first."""
    query = (
        select(Grant)
        .where(Grant.owner_department_id == owner_department_id, *_owed(now))
        .order_by(Grant.delivery_due_at, Grant.id)
        .limit(limit)
    )
    if after is not None:
        due, grant_id = after
        query = query.where(
            (Grant.delivery_due_at > due) | ((Grant.delivery_due_at == due) & (Grant.id > grant_id))
        )
    return list((await session.scalars(query)).unique())


async def escalate_overdue(*, session: AsyncSession, actor: Actor, now: datetime) -> list[Grant]:
    """Send every overdue delivery not yet sent to coordination, as the sweep does overdue
    decisions: stamped `delivery_escalated_at` and recorded as `grant.delivery_escalated`. A
    delivery stays on the agenda, escalated, until its first release arrives."""
    query = (
        select(Grant)
        .where(*_owed(now), Grant.delivery_due_at < now, Grant.delivery_escalated_at.is_(None))
        .order_by(Grant.delivery_due_at, Grant.id)
        .with_for_update(of=Grant)
        .execution_options(populate_existing=True)
    )
    # Locked and re-read: a concurrent sweep that got there first leaves its stamp to see.
    late = [g for g in (await session.scalars(query)).unique() if g.delivery_escalated_at is None]
    for grant in late:
        grant.delivery_escalated_at = now
    await session.flush()
    for grant in late:
        assert grant.delivery_due_at is not None
        await audit.record(
            session,
            actor,
            "grant.delivery_escalated",
            AuditObject("grant", str(grant.id)),
            details={
                "dataset": grant.dataset.code,
                "owner": grant.owner.code,
                "grantee": grant.grantee.code,
                "delivery_due_at": grant.delivery_due_at.isoformat(),
            },
        )
    return late
