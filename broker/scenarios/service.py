"""Scenarios: created by requesters of the lead department, which alone changes them."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit import service as audit
from broker.audit.service import Actor, AuditObject
from broker.auth.principal import Principal
from broker.scenarios.models import Scenario
from broker.scenarios.schemas import ScenarioCreate, ScenarioUpdate
from catalog.departments import service as departments
from catalog.departments.models import Department
from core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound


async def _check_members(session: AsyncSession, codes: list[str]) -> None:
    known = set(
        (await session.scalars(select(Department.code).where(Department.code.in_(codes)))).all()
    )
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise InvalidInput(
            f"Unknown department(s): {', '.join(unknown)}.",
            errors=[FieldError("body.members", "Use registered department codes.")],
        )


def _auditable(scenario: Scenario, *, with_description: bool = True) -> dict[str, object]:
    """What the audit log keeps of a scenario."""
    kept: dict[str, object] = {
        "name": scenario.name,
        "phase": scenario.phase.value,
        "members": list(scenario.members),
    }
    if with_description:
        kept["description"] = scenario.description
    return kept


async def create(
    *, session: AsyncSession, principal: Principal, actor: Actor, data: ScenarioCreate
) -> Scenario:
    """A scenario led by the caller's department; recorded as `scenario.created`."""
    if await session.scalar(select(Scenario).where(Scenario.code == data.code)) is not None:
        raise Conflict(
            f"A scenario with the code '{data.code}' already exists.",
            errors=[FieldError("body.code", "Choose another code.", "duplicate")],
        )
    await _check_members(session, data.members)
    lead = await departments.get_by_id(session=session, department_id=principal.department_id)
    scenario = Scenario(
        code=data.code,
        name=data.name,
        description=data.description,
        lead=lead,
        phase=data.phase,
        members=sorted(set(data.members)),
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


def may_see(principal: Principal, scenario: Scenario) -> bool:
    return (
        principal.is_platform_admin
        or principal.department_id == scenario.lead_department_id
        or principal.department_code in scenario.members
        or "leader" in principal.roles
        or "auditor" in principal.roles
    )


async def get(*, session: AsyncSession, principal: Principal, code: str) -> Scenario:
    scenario = await session.scalar(select(Scenario).where(Scenario.code == code))
    if scenario is None or not may_see(principal, scenario):
        raise NotFound(f"No scenario has the code '{code}'.")
    return scenario


async def list_visible(
    *, session: AsyncSession, principal: Principal, after: str | None, limit: int
) -> list[Scenario]:
    query = select(Scenario).order_by(Scenario.code)
    if after is not None:
        query = query.where(Scenario.code > after)
    rows = [s for s in (await session.scalars(query)).all() if may_see(principal, s)]
    return rows[:limit]


async def update(
    *,
    session: AsyncSession,
    principal: Principal,
    actor: Actor,
    scenario: Scenario,
    data: ScenarioUpdate,
) -> Scenario:
    """Only the lead department (or the platform) changes a scenario; recorded with its changes."""
    if principal.department_id != scenario.lead_department_id and not principal.is_platform_admin:
        raise Forbidden("Only the lead department changes its scenario.")
    before = _auditable(scenario)
    changes = data.model_dump(exclude_unset=True)
    if "members" in changes and data.members is not None:
        await _check_members(session, data.members)
        changes["members"] = sorted(set(data.members))
    for name, value in changes.items():
        if value is not None:
            setattr(scenario, name, value)
    await session.flush()
    await audit.record(
        session,
        actor,
        "scenario.updated",
        AuditObject("scenario", scenario.code),
        details=audit.changes(before, _auditable(scenario)),
    )
    return scenario
