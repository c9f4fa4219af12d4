"""Departments as the broker changes them: the catalog's rules, each change audited.

The catalog owns what a department is (`catalog.departments.service`) and never imports the
broker; the audit event of a change is recorded here, in the change's transaction.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit import service as audit
from broker.audit.service import Actor, AuditObject
from catalog.departments import service as departments
from catalog.departments.models import Department
from catalog.departments.schemas import DepartmentCreate, DepartmentRead, DepartmentUpdate


def auditable(department: Department) -> dict[str, object]:
    """What the audit log keeps of a department."""
    return DepartmentRead.model_validate(department).model_dump(
        mode="json", include={"name", "kind", "parent_code", "version"}
    )


async def create(*, session: AsyncSession, actor: Actor, data: DepartmentCreate) -> Department:
    """Register a department (codes are unique across the district) and record it."""
    department = await departments.create(session=session, data=data)
    await audit.record(
        session,
        actor,
        "department.created",
        AuditObject("department", department.code),
        details={"after": auditable(department)},
    )
    return department


async def update(
    *,
    session: AsyncSession,
    actor: Actor,
    department: Department,
    data: DepartmentUpdate,
    expected_version: int,
) -> Department:
    """Change a department at the version its editor last saw (412 otherwise) and record it."""
    before = auditable(department)
    department = await departments.update(
        session=session, department=department, data=data, expected_version=expected_version
    )
    await audit.record(
        session,
        actor,
        "department.updated",
        AuditObject("department", department.code),
        details=audit.changes(before, auditable(department)),
    )
    return department
