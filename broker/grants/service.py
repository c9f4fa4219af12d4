"""Grants: issued for an approved line, visible to both sides, revoked, suspended or resumed by
the owner or the platform, expired when their end passes.

Requests calls in here once a line is approved; grants never reads a request. What it needs of
the approval arrives as an `Approval`.
"""

import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit import service as audit
from broker.audit.service import Actor, AuditObject
from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.grants import masking
from broker.grants.models import Grant, GrantStatus
from broker.grants.schemas import Conditions
from broker.scenarios import service as scenarios
from broker.scenarios.models import MemberKind, Scenario
from catalog.datasets.models import NUMERIC, DataItem, Dataset, effective_aggregation
from catalog.departments.models import Department
from catalog.vocab import Aggregation
from core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from core.workdays import add_working_days

# A grant ends with the last second of its last day where the departments work.
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Approval:
    """An approved request line, as much of it as its grant is issued from."""

    line_id: uuid.UUID
    request_id: uuid.UUID
    scenario_id: uuid.UUID
    grantee: Department
    dataset: Dataset
    item: DataItem | None
    usage_end: date
    purpose: str


def check_conditions(
    *, dataset: Dataset | None, item: DataItem | None, conditions: Conditions, location: str
) -> None:
    """Conditions may only name columns the line's dataset (or its one item) has, lift only a
    default masking that exists, without also masking the column they lift, and aggregate to a
    level only granted columns that can be aggregated (422 otherwise)."""
    if dataset is None:
        return
    items = {item.code: item} if item is not None else {i.code: i for i in dataset.items}
    named = (
        list(conditions.columns or [])
        + list(conditions.masking)
        + list(conditions.lift_masking)
        + [f.column for f in conditions.row_filter]
    )
    unknown = sorted({c for c in named if c not in items})
    if unknown:
        raise InvalidInput(
            f"The line covers no column(s) {', '.join(unknown)} of '{dataset.code}'.",
            errors=[FieldError(location, f"Name only the line's columns: {sorted(items)}.")],
        )
    errors = []
    for column in sorted(conditions.lift_masking):
        where = f"{location}.lift_masking.{column}"
        if column in conditions.masking:
            errors.append(
                FieldError(
                    where,
                    f"'{column}' is both masked and lifted; name it in masking or in "
                    "lift_masking, not both.",
                    "conflict",
                )
            )
        elif masking.catalog_default(items[column], dataset) is None:
            errors.append(
                FieldError(
                    where,
                    f"'{column}' has no default masking in the catalog: nothing to lift.",
                    "nothing_to_lift",
                )
            )
    if errors:
        raise InvalidInput(
            f"{len(errors)} lift(s) of default masking cannot apply; fix each one listed.",
            errors=errors,
        )
    _check_aggregation(dataset=dataset, items=items, conditions=conditions, location=location)


def _check_aggregation(
    *, dataset: Dataset, items: dict[str, DataItem], conditions: Conditions, location: str
) -> None:
    """Issue 15: aggregating to a level combines each granted numeric column by its effective
    aggregation; one that has none (a rate, average or price nobody declared, or `none`) would
    be summed into nonsense, so the approval is refused now rather than every download later."""
    level = conditions.aggregation_level
    if level is None or level not in {i.code for i in dataset.items}:
        return
    granted = conditions.columns or list(items)
    refused = [
        f"'{code}' ({items[code].name})"
        for code in granted
        if code != level
        and items[code].data_type in NUMERIC
        and effective_aggregation(items[code]) == Aggregation.none
    ]
    if refused:
        raise InvalidInput(
            f"Aggregating '{dataset.code}' by '{level}' would combine {', '.join(refused)}, which "
            "cannot be aggregated.",
            errors=[
                FieldError(
                    f"{location}.aggregation_level",
                    f"{', '.join(refused)} cannot be aggregated (declared none, or a rate, "
                    "percentage, average or price without a declared mean, min, max or last): "
                    "leave them out of columns, have the catalog declare how they aggregate, or "
                    "do not aggregate.",
                    "not_aggregable",
                )
            ],
        )


def valid_until(*, usage_end: date, conditions: Conditions | None) -> datetime:
    """The end of the request's usage period, or the earlier end the conditions set, at the
    last second of that day in Shanghai."""
    end = usage_end
    if conditions is not None and conditions.valid_until is not None:
        end = min(end, conditions.valid_until)
    return datetime.combine(end, time(23, 59, 59), tzinfo=SHANGHAI).astimezone(UTC)


@functools.lru_cache(maxsize=16)
def _delivery_due(now: datetime, working_days: int) -> datetime:
    """When a first release is due; the same for every grant a bulk transition issues at `now`,
    and the holiday calendar is slow enough to compute it once (issue 17)."""
    return add_working_days(now, working_days)[0].astimezone(UTC)


def issued(
    *,
    actor: Actor,
    now: datetime,
    approval: Approval,
    conditions: Conditions | None,
    delivery_working_days: int,
) -> tuple[Grant, audit.Entry]:
    """The grant for an approved line and its `grant.issued` event, not yet written: `issue`
    writes one, a bulk transition (a submit's auto-approvals) writes many in one statement.

    Exactly the approved columns, until the usage period ends, masked as the catalog's defaults
    and the approval say (`masking.enforced`). The owner's delivery clock starts with it: a first
    release is due `delivery_working_days` later."""
    dataset = approval.dataset
    if approval.item is not None:
        columns = [approval.item.code]
    elif conditions is not None and conditions.columns:
        columns = list(conditions.columns)
    else:
        columns = [i.code for i in dataset.items]
    terms = masking.enforced(dataset=dataset, item=approval.item, conditions=conditions)
    delivery_due_at = _delivery_due(now, delivery_working_days)
    grant = Grant(
        id=uuid.uuid4(),
        line_id=approval.line_id,
        request_id=approval.request_id,
        scenario_id=approval.scenario_id,
        grantee_department_id=approval.grantee.id,
        owner_department_id=dataset.owner_department_id,
        dataset_id=dataset.id,
        dataset=dataset,
        columns=columns,
        purpose=approval.purpose,
        conditions=terms.model_dump(mode="json") if terms != Conditions() else {},
        valid_from=now,
        valid_until=valid_until(usage_end=approval.usage_end, conditions=conditions),
        delivery_due_at=delivery_due_at,
        issued_by=actor.client_id or actor.subject or "system",
    )
    event = audit.Entry(
        "grant.issued",
        AuditObject("grant", str(grant.id)),
        details={
            "line": str(approval.line_id),
            "dataset": dataset.code,
            "columns": columns,
            "grantee": approval.grantee.code,
            "valid_until": grant.valid_until.isoformat(),
            "delivery_due_at": delivery_due_at.isoformat(),
            "masking": terms.masking,
            "lift_masking": sorted(terms.lift_masking),
        },
    )
    return grant, event


async def issue(
    *,
    session: AsyncSession,
    actor: Actor,
    now: datetime,
    approval: Approval,
    conditions: Conditions | None,
    delivery_working_days: int,
) -> Grant:
    """Issue the grant for one approved line (`issued`) and record it."""
    grant, event = issued(
        actor=actor,
        now=now,
        approval=approval,
        conditions=conditions,
        delivery_working_days=delivery_working_days,
    )
    session.add(grant)
    await session.flush()
    await audit.record_many(session, actor, [event])
    return grant


async def ids_by_line(
    *, session: AsyncSession, line_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """The grant issued for each of these request lines that has one."""
    ids = list(line_ids)
    if not ids:
        return {}
    rows = (
        await session.execute(select(Grant.line_id, Grant.id).where(Grant.line_id.in_(ids)))
    ).all()
    return {line_id: grant_id for line_id, grant_id in rows}


def may_see(principal: Principal, grant: Grant) -> bool:
    return (
        principal.is_platform_admin
        or Role.auditor in principal.roles
        or principal.department_id in (grant.grantee_department_id, grant.owner_department_id)
    )


async def _contracted_for(
    session: AsyncSession, principal: Principal
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(scenario, department) pairs a contractor was ever listed to work on, ended or not.

    A contractor sees those grants also after its window closed, so that a late download is
    refused with its reason (and audited as access.denied) instead of reading as unknown.
    """
    if Role.contractor not in principal.roles:
        return []
    held = await scenarios.memberships(session=session, account_id=principal.account_id)
    return [
        (m.scenario_id, m.acting_for_department_id) for m in held if m.kind == MemberKind.contractor
    ]


async def get(*, session: AsyncSession, principal: Principal, grant_id: uuid.UUID) -> Grant:
    """A grant the caller may see: both departments, the platform, auditors, and contractors
    of the grant's scenario acting for the grantee."""
    grant = await session.get(Grant, grant_id)
    if grant is None or not (
        may_see(principal, grant)
        or (grant.scenario_id, grant.grantee_department_id)
        in await _contracted_for(session, principal)
    ):
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
                *(
                    and_(Grant.scenario_id == scenario, Grant.grantee_department_id == grantee)
                    for scenario, grantee in await _contracted_for(session, principal)
                ),
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


@scenarios.on_retirement
async def end_for_scenario(
    *, session: AsyncSession, actor: Actor, scenario: Scenario, now: datetime
) -> list[Grant]:
    """A retired scenario's grants end with it (issue 14): every active or suspended one is
    revoked, each recorded as `grant.revoked` with the reason, and nothing is delivered under
    it from this transaction on."""
    reason = f"scenario {scenario.code} retired"
    query = (
        select(Grant)
        .where(
            Grant.scenario_id == scenario.id,
            Grant.status.in_([GrantStatus.active, GrantStatus.suspended]),
        )
        .order_by(Grant.id)
        .with_for_update(of=Grant)
        .execution_options(populate_existing=True)
    )
    ended = [
        g
        for g in (await session.scalars(query)).unique()
        if g.status_at(now) != GrantStatus.expired
    ]
    for grant in ended:
        grant.status, grant.status_reason = GrantStatus.revoked, reason
    await session.flush()
    for grant in ended:
        await audit.record(
            session,
            actor,
            "grant.revoked",
            AuditObject("grant", str(grant.id)),
            details={"reason": reason, "scenario": scenario.code},
        )
    return ended
