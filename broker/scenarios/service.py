"""Scenarios: created by requesters of the lead department, which alone changes them and lists
the accounts taking part: people of the taking-part departments, and contractors (开发公司)
acting for the lead within a time window (issue 14)."""

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit import service as audit
from broker.audit.service import Actor, AuditObject
from broker.auth.models import Account, Role
from broker.auth.principal import Principal
from broker.scenarios.models import MemberKind, Phase, Scenario, ScenarioMember
from broker.scenarios.schemas import MemberCreate, ScenarioCreate, ScenarioUpdate
from catalog.departments import service as departments
from catalog.departments.models import Department, DepartmentKind
from core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from core.time import utcnow

# A scenario's life is counted in the district's days.
SHANGHAI = ZoneInfo("Asia/Shanghai")


class RetirementEffect(Protocol):
    async def __call__(
        self, *, session: AsyncSession, actor: Actor, scenario: Scenario, now: datetime
    ) -> object: ...


Effect = TypeVar("Effect", bound=RetirementEffect)
_retirement_effects: list[RetirementEffect] = []


def on_retirement(effect: Effect) -> Effect:
    """Run `effect` in the transaction that retires a scenario.

    Grants end with their scenario, but grants are built on scenarios (a grant reads the
    scenario's members), so scenarios cannot call them without an import cycle; grants
    subscribe here instead.
    """
    _retirement_effects.append(effect)
    return effect


async def _check_members(session: AsyncSession, codes: list[str]) -> None:
    """Member departments are registered ones, and never enterprises: an enterprise's people
    take part as contractors acting for the lead, never as a department of their own."""
    found = {
        d.code: d
        for d in (await session.scalars(select(Department).where(Department.code.in_(codes))))
    }
    unknown = [c for c in codes if c not in found]
    if unknown:
        raise InvalidInput(
            f"Unknown department(s): {', '.join(unknown)}.",
            errors=[FieldError("body.members", "Use registered department codes.")],
        )
    enterprises = [c for c in codes if found[c].kind == DepartmentKind.enterprise]
    if enterprises:
        raise InvalidInput(
            f"{', '.join(enterprises)} is an enterprise; it cannot be a member department.",
            errors=[
                FieldError(
                    "body.members",
                    "Remove the enterprise; add its people as contractors "
                    "(POST /v1/scenarios/{code}/members).",
                )
            ],
        )


def _today(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date()


def _check_ends_on(ends_on: date | None, now: datetime) -> None:
    if ends_on is not None and ends_on < _today(now):
        raise InvalidInput(
            f"The scenario would end on {ends_on.isoformat()}, in the past.",
            errors=[FieldError("body.ends_on", "Give today or a later day.")],
        )


def _life(scenario: Scenario) -> tuple[datetime, datetime | None]:
    """From the start of the day it was created to the end of its `ends_on` day, if any."""
    start = datetime.combine(scenario.created_at.astimezone(SHANGHAI).date(), time.min, SHANGHAI)
    if scenario.ends_on is None:
        return start, None
    return start, datetime.combine(scenario.ends_on + timedelta(days=1), time.min, SHANGHAI)


def _auditable(scenario: Scenario, *, with_description: bool = True) -> dict[str, object]:
    """What the audit log keeps of a scenario."""
    kept: dict[str, object] = {
        "name": scenario.name,
        "phase": scenario.phase.value,
        "members": list(scenario.members),
        "ends_on": scenario.ends_on.isoformat() if scenario.ends_on else None,
    }
    if with_description:
        kept["description"] = scenario.description
    return kept


async def create(
    *, session: AsyncSession, principal: Principal, actor: Actor, data: ScenarioCreate
) -> Scenario:
    """A scenario led by the caller's department; recorded as `scenario.created`.

    An enterprise never leads one: it works on scenarios only as a lead's contractor.
    """
    lead = await departments.get_by_id(session=session, department_id=principal.department_id)
    if lead.kind == DepartmentKind.enterprise:
        raise Forbidden(
            f"'{lead.code}' is an enterprise; it cannot lead a scenario, only work on one as "
            "a contractor of the lead department."
        )
    if await session.scalar(select(Scenario).where(Scenario.code == data.code)) is not None:
        raise Conflict(
            f"A scenario with the code '{data.code}' already exists.",
            errors=[FieldError("body.code", "Choose another code.", "duplicate")],
        )
    await _check_members(session, data.members)
    _check_ends_on(data.ends_on, utcnow())
    scenario = Scenario(
        code=data.code,
        name=data.name,
        description=data.description,
        lead=lead,
        phase=data.phase,
        members=sorted(set(data.members)),
        ends_on=data.ends_on,
    )
    session.add(scenario)
    await session.flush()
    await audit.record(
        session,
        actor,
        "scenario.created",
        AuditObject("scenario", scenario.code),
        details={"after": _auditable(scenario, with_description=False)},
    )
    return scenario


def _sees_by_department(principal: Principal, scenario: Scenario) -> bool:
    return (
        principal.is_platform_admin
        or principal.department_id == scenario.lead_department_id
        or principal.department_code in scenario.members
        or Role.leader in principal.roles
        or Role.auditor in principal.roles
    )


async def memberships(
    *, session: AsyncSession, account_id: uuid.UUID | None, scenario_id: uuid.UUID | None = None
) -> list[ScenarioMember]:
    """Every membership the account holds or held (of one scenario, if given), ended or not."""
    if account_id is None:
        return []
    query = select(ScenarioMember).where(ScenarioMember.account_id == account_id)
    if scenario_id is not None:
        query = query.where(ScenarioMember.scenario_id == scenario_id)
    return list((await session.scalars(query.order_by(ScenarioMember.created_at))).unique())


async def active_membership(
    *, session: AsyncSession, scenario_id: uuid.UUID, account_id: uuid.UUID | None, now: datetime
) -> ScenarioMember | None:
    """The account's membership of the scenario in force at `now`: not ended, inside its window."""
    held = await memberships(session=session, account_id=account_id, scenario_id=scenario_id)
    return next((m for m in held if m.active_at(now)), None)


async def _may_see(session: AsyncSession, principal: Principal, scenario: Scenario) -> bool:
    """Its departments, leaders, auditors and the platform; and any account ever listed on it
    (a contractor, whose enterprise takes no part as a department)."""
    if _sees_by_department(principal, scenario):
        return True
    held = await memberships(
        session=session, account_id=principal.account_id, scenario_id=scenario.id
    )
    return bool(held)


async def get(*, session: AsyncSession, principal: Principal, code: str) -> Scenario:
    scenario = await session.scalar(select(Scenario).where(Scenario.code == code))
    if scenario is None or not await _may_see(session, principal, scenario):
        raise NotFound(f"No scenario has the code '{code}'.")
    return scenario


async def get_by_id(*, session: AsyncSession, scenario_id: uuid.UUID) -> Scenario:
    return await session.get_one(Scenario, scenario_id)


async def list_visible(
    *, session: AsyncSession, principal: Principal, after: str | None, limit: int
) -> list[Scenario]:
    query = select(Scenario).order_by(Scenario.code)
    if after is not None:
        query = query.where(Scenario.code > after)
    listed_on = {
        m.scenario_id for m in await memberships(session=session, account_id=principal.account_id)
    }
    rows = [
        s
        for s in (await session.scalars(query)).all()
        if _sees_by_department(principal, s) or s.id in listed_on
    ]
    return rows[:limit]


def _require_lead(principal: Principal, scenario: Scenario, what: str) -> None:
    if principal.department_id != scenario.lead_department_id and not principal.is_platform_admin:
        raise Forbidden(
            f"Only the lead department ('{scenario.lead.code}') or the platform {what}."
        )


async def _open_memberships(session: AsyncSession, scenario: Scenario) -> list[ScenarioMember]:
    query = select(ScenarioMember).where(
        ScenarioMember.scenario_id == scenario.id, ScenarioMember.ended_at.is_(None)
    )
    return list((await session.scalars(query)).unique())


async def _check_new_end(
    session: AsyncSession, scenario: Scenario, ends_on: date | None, now: datetime
) -> None:
    """A scenario's life may not end before a window it already gave a contractor or member."""
    _check_ends_on(ends_on, now)
    if ends_on is None:
        return
    end = datetime.combine(ends_on + timedelta(days=1), time.min, SHANGHAI)
    outlasting = sorted(
        m.account.name
        for m in await _open_memberships(session, scenario)
        if m.valid_until is not None and m.valid_until > end and m.valid_until > now
    )
    if outlasting:
        raise InvalidInput(
            f"The window of {', '.join(outlasting)} runs past {ends_on.isoformat()}.",
            errors=[
                FieldError("body.ends_on", "Give a later day, or end those memberships first.")
            ],
        )


async def update(
    *,
    session: AsyncSession,
    principal: Principal,
    actor: Actor,
    scenario: Scenario,
    data: ScenarioUpdate,
) -> Scenario:
    """Only the lead department (or the platform) changes a scenario; recorded with its changes.

    Retirement is final, and ends what was given for the scenario (`on_retirement`): its
    grants stop delivering at once.
    """
    _require_lead(principal, scenario, "changes the scenario")
    now = utcnow()
    changes = data.model_dump(exclude_unset=True)
    if scenario.phase == Phase.retired and changes.get("phase") not in (None, Phase.retired):
        raise Conflict(
            f"Scenario '{scenario.code}' is retired; retirement is final (its grants ended). "
            "Create a new scenario instead."
        )
    retiring = scenario.phase != Phase.retired and changes.get("phase") == Phase.retired
    before = _auditable(scenario)
    if "members" in changes and data.members is not None:
        await _check_members(session, data.members)
        changes["members"] = sorted(set(data.members))
    if "ends_on" in changes:
        await _check_new_end(session, scenario, data.ends_on, now)
        scenario.ends_on = data.ends_on
    for name, value in changes.items():
        if value is not None and name != "ends_on":
            setattr(scenario, name, value)
    await session.flush()
    await audit.record(
        session,
        actor,
        "scenario.updated",
        AuditObject("scenario", scenario.code),
        details=audit.changes(before, _auditable(scenario)),
    )
    if retiring:
        for effect in _retirement_effects:
            await effect(session=session, actor=actor, scenario=scenario, now=now)
    return scenario


# ---------------------------------------------------------------- the people taking part


def _check_window(
    scenario: Scenario, valid_from: datetime | None, valid_until: datetime | None
) -> None:
    """A window opens before it closes, and lies within the scenario's life (issue 14)."""
    start, end = _life(scenario)
    life = (
        f"{start.date().isoformat()} .. {scenario.ends_on.isoformat() if scenario.ends_on else ''}"
    )
    if valid_from is not None and valid_until is not None and valid_from >= valid_until:
        raise InvalidInput(
            f"The window closes ({valid_until.isoformat()}) before it opens "
            f"({valid_from.isoformat()}).",
            errors=[FieldError("body.valid_until", "Give an end after valid_from.")],
        )
    if valid_from is not None and valid_from < start:
        raise InvalidInput(
            f"The window opens before the scenario's life ({life}) began.",
            errors=[FieldError("body.valid_from", f"Give {start.isoformat()} or later.")],
        )
    if valid_until is not None and valid_until <= start:
        raise InvalidInput(
            f"The window closes before the scenario's life ({life}) began.",
            errors=[FieldError("body.valid_until", f"Give a moment after {start.isoformat()}.")],
        )
    if end is not None and valid_until is not None and valid_until > end:
        raise InvalidInput(
            f"The window outlasts the scenario, which ends on {scenario.ends_on}.",
            errors=[FieldError("body.valid_until", f"Give {end.isoformat()} or earlier.")],
        )
    if end is not None and valid_from is not None and valid_from >= end:
        raise InvalidInput(
            f"The window opens after the scenario ends on {scenario.ends_on}.",
            errors=[FieldError("body.valid_from", f"Give a moment before {end.isoformat()}.")],
        )


async def _account_to_add(
    session: AsyncSession, scenario: Scenario, data: MemberCreate
) -> tuple[Account, Department]:
    """The account and the department it will act for; refused when it may not take part."""
    account = await session.scalar(select(Account).where(Account.name == data.account))
    if account is None:
        raise InvalidInput(
            f"No account is named '{data.account}'.",
            errors=[FieldError("body.account", "Name a registered account.")],
        )
    if data.kind == MemberKind.member:
        own = account.department
        if own.id != scenario.lead_department_id and own.code not in scenario.members:
            raise InvalidInput(
                f"'{account.name}' belongs to '{own.code}', which takes no part in scenario "
                f"'{scenario.code}'.",
                errors=[
                    FieldError(
                        "body.account",
                        "Add the department to the scenario's members first, or name an "
                        "account of the lead or a member department.",
                    )
                ],
            )
        return account, own
    if account.department.kind != DepartmentKind.enterprise:
        raise InvalidInput(
            f"'{account.name}' belongs to '{account.department.code}', which is not an "
            "enterprise; only an enterprise's people are contractors.",
            errors=[FieldError("body.kind", "Add a department's own people as 'member'.")],
        )
    if data.valid_until is None:
        raise InvalidInput(
            "A contractor's access needs an end.",
            errors=[FieldError("body.valid_until", "Give the moment its access ends.")],
        )
    return account, scenario.lead


async def add_member(
    *,
    session: AsyncSession,
    principal: Principal,
    actor: Actor,
    scenario: Scenario,
    data: MemberCreate,
    now: datetime,
) -> ScenarioMember:
    """List an account on the scenario; recorded as `scenario.member_added`.

    A member is a person of the lead or a member department, acting for its own department; a
    contractor is a person of an enterprise, acting for the lead within a closed window. Only
    the lead department or the platform adds anyone, and never to a retired scenario.
    """
    _require_lead(principal, scenario, "adds people to the scenario")
    if scenario.phase == Phase.retired:
        raise Conflict(f"Scenario '{scenario.code}' is retired; it takes no members.")
    account, acting_for = await _account_to_add(session, scenario, data)
    _check_window(scenario, data.valid_from, data.valid_until)
    # Two adds of one account at once would both find it unlisted; the second waits here.
    await session.execute(select(Scenario.id).where(Scenario.id == scenario.id).with_for_update())
    current = [
        m
        for m in await memberships(session=session, account_id=account.id, scenario_id=scenario.id)
        if m.ended_at is None and (m.valid_until is None or m.valid_until > now)
    ]
    if current:
        raise Conflict(
            f"'{account.name}' already takes part in scenario '{scenario.code}' "
            f"(membership {current[0].id}); end it before adding another.",
            extra={"member_id": str(current[0].id)},
        )
    member = ScenarioMember(
        scenario_id=scenario.id,
        account=account,
        kind=data.kind,
        acting_for=acting_for,
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        added_by=principal.client_id or principal.subject,
    )
    session.add(member)
    await session.flush()
    await audit.record(
        session,
        actor,
        "scenario.member_added",
        AuditObject("scenario", scenario.code),
        details={
            "member": str(member.id),
            "account": account.name,
            "kind": member.kind.value,
            "acting_for": acting_for.code,
            "valid_from": member.valid_from.isoformat() if member.valid_from else None,
            "valid_until": member.valid_until.isoformat() if member.valid_until else None,
        },
    )
    return member


async def list_members(
    *, session: AsyncSession, scenario: Scenario, after: uuid.UUID | None, limit: int
) -> Sequence[ScenarioMember]:
    query = (
        select(ScenarioMember)
        .where(ScenarioMember.scenario_id == scenario.id)
        .order_by(ScenarioMember.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(ScenarioMember.id > after)
    return list((await session.scalars(query)).unique())


async def get_member(
    *, session: AsyncSession, scenario: Scenario, member_id: uuid.UUID, for_update: bool = False
) -> ScenarioMember:
    query = select(ScenarioMember).where(
        ScenarioMember.id == member_id, ScenarioMember.scenario_id == scenario.id
    )
    if for_update:
        query = query.with_for_update(of=ScenarioMember).execution_options(populate_existing=True)
    member = await session.scalar(query)
    if member is None:
        raise NotFound(f"Scenario '{scenario.code}' has no member '{member_id}'.")
    return member


async def end_member(
    *,
    session: AsyncSession,
    principal: Principal,
    actor: Actor,
    scenario: Scenario,
    member_id: uuid.UUID,
    reason: str,
    now: datetime,
) -> ScenarioMember:
    """End an account's part in the scenario at once (the lead department or the platform):
    from this moment it downloads nothing under the scenario's grants. Recorded as
    `scenario.member_ended`."""
    _require_lead(principal, scenario, "ends a membership")
    member = await get_member(
        session=session, scenario=scenario, member_id=member_id, for_update=True
    )
    if member.ended_at is not None:
        raise Conflict(
            f"Membership {member.id} already ended at {member.ended_at.isoformat()}.",
            extra={"ended_at": member.ended_at.isoformat()},
        )
    member.ended_at = now
    member.ended_by = principal.client_id or principal.subject
    member.end_reason = reason
    await session.flush()
    await audit.record(
        session,
        actor,
        "scenario.member_ended",
        AuditObject("scenario", scenario.code),
        details={
            "member": str(member.id),
            "account": member.account.name,
            "kind": member.kind.value,
            "reason": reason,
        },
    )
    return member
