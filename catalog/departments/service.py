import difflib
import re
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.departments.models import Department
from catalog.departments.schemas import DepartmentCreate, DepartmentUpdate
from core.errors import Conflict, FieldError, InvalidInput, NotFound, PreconditionFailed

_SPACES = re.compile(r"\s+")


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


@dataclass(frozen=True)
class Named:
    """A department as a file names it: its code and its full name."""

    code: str
    name: str

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


def _folded(text: str) -> str:
    return _SPACES.sub("", unicodedata.normalize("NFKC", text))


def _in_order(short: str, name: str) -> bool:
    """Whether every character of `short` is in `name`, in order: 人社局 in
    区人力资源和社会保障局."""
    rest = iter(name)
    return all(char in rest for char in short)


class Directory:
    """The departments a hand-made file may name: by code (any case), by full name, or by a short
    name that only one department's name holds (统计局 for 区统计局; 发改委 for
    区发展和改革委员会: its characters in order). Full-width letters and spaces do not matter."""

    def __init__(self, departments: Iterable[Named]) -> None:
        self.departments: dict[str, Named] = {}
        for department in departments:
            self.add(department)

    def add(self, department: Named) -> None:
        self.departments[department.code] = department

    def lookup(self, text: str) -> Named | list[Named]:
        """The department `text` names; otherwise those it may mean (a short name several names
        hold, or near misses), best first, possibly none."""
        wanted = _folded(text)
        for department in self.departments.values():
            if wanted.lower() == department.code.lower() or wanted == _folded(department.name):
                return department
        if len(wanted) >= 2:
            names = [(d, _folded(d.name)) for d in self.departments.values()]
            for holding in (
                [d for d, name in names if wanted in name],
                [d for d, name in names if _in_order(wanted, name)],
            ):
                if len(holding) == 1:
                    return holding[0]
                if holding:
                    return holding
        spelled = {_folded(d.name): d for d in self.departments.values()} | {
            d.code.lower(): d for d in self.departments.values()
        }
        close = difflib.get_close_matches(wanted.lower(), list(spelled), n=2, cutoff=0.5)
        return list(dict.fromkeys(spelled[c] for c in close))


def did_you_mean(candidates: list[Named]) -> str:
    """ " (did you mean 区统计局 (stats)?)" for a sentence naming an unknown department."""
    if not candidates:
        return ""
    return f" (did you mean {' or '.join(str(c) for c in candidates)}?)"


async def all_departments(*, session: AsyncSession) -> list[Department]:
    """Every department, in code order: a district has tens, not thousands."""
    return list((await session.scalars(select(Department).order_by(Department.code))).all())
