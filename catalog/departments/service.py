import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.departments.models import Department
from catalog.departments.schemas import DepartmentCreate, DepartmentUpdate
from core.errors import Conflict, FieldError, InvalidInput, NotFound, PreconditionFailed


async def list_departments(
    *, session: AsyncSession, after_code: str | None, limit: int
) -> list[Department]:
    """Departments in code order, one keyset page at a time."""
    query = select(Department).order_by(Department.code).limit(limit)
    if after_code is not None:
        query = query.where(Department.code > after_code)
    return list((await session.scalars(query)).all())


async def find_by_code(*, session: AsyncSession, code: str) -> Department | None:
    return await session.scalar(select(Department).where(Department.code == code))


async def get_by_code(*, session: AsyncSession, code: str) -> Department:
    department = await find_by_code(session=session, code=code)
    if department is None:
        raise NotFound(f"No department has the code '{code}'.")
    return department


async def get_by_id(*, session: AsyncSession, department_id: uuid.UUID) -> Department:
    department = await session.get(Department, department_id)
    if department is None:
        raise NotFound(f"No department has the id '{department_id}'.")
    return department


async def _parent_for(*, session: AsyncSession, parent_code: str) -> Department:
    parent = await find_by_code(session=session, code=parent_code)
    if parent is None:
        raise InvalidInput(
            f"The parent department '{parent_code}' does not exist.",
            errors=[
                FieldError(
                    "body.parent_code",
                    f"No department has the code '{parent_code}'; "
                    "create it first or omit the parent.",
                    "unknown_reference",
                )
            ],
        )
    return parent


async def create(*, session: AsyncSession, data: DepartmentCreate) -> Department:
    """Register a department; codes are unique across the district."""
    if await find_by_code(session=session, code=data.code) is not None:
        raise Conflict(
            f"A department with the code '{data.code}' already exists.",
            errors=[FieldError("body.code", "Choose another code.", "duplicate")],
        )
    parent = None
    if data.parent_code is not None:
        parent = await _parent_for(session=session, parent_code=data.parent_code)
    department = Department(code=data.code, name=data.name, kind=data.kind, parent=parent)
    session.add(department)
    await session.flush()
    return department


async def update(
    *,
    session: AsyncSession,
    department: Department,
    data: DepartmentUpdate,
    expected_version: int | None,
) -> Department:
    """Change a department's name, kind or parent; a parent chain must never loop."""
    if expected_version is not None and expected_version != department.version:
        raise PreconditionFailed(
            f"Department '{department.code}' is at version {department.version}, "
            f"not {expected_version}; fetch it again and reapply your change."
        )
    changes = data.model_dump(exclude_unset=True)
    if "parent_code" in changes:
        if data.parent_code is None:
            department.parent = None
        else:
            parent = await _parent_for(session=session, parent_code=data.parent_code)
            await _refuse_cycle(session=session, department=department, parent=parent)
            department.parent = parent
    if data.name is not None:
        department.name = data.name
    if data.kind is not None:
        department.kind = data.kind
    await session.flush()
    await session.refresh(department)
    return department


async def _refuse_cycle(
    *, session: AsyncSession, department: Department, parent: Department
) -> None:
    ancestor: Department | None = parent
    while ancestor is not None:
        if ancestor.id == department.id:
            raise InvalidInput(
                f"'{parent.code}' cannot be the parent of '{department.code}': "
                "that would make a department its own ancestor.",
                errors=[
                    FieldError("body.parent_code", "Pick a department outside this one's subtree.")
                ],
            )
        ancestor = (
            await session.get(Department, ancestor.parent_id)
            if ancestor.parent_id is not None
            else None
        )
