from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from broker.audit import service as audit
from broker.audit.dependencies import AuditActor
from broker.audit.service import AuditObject
from broker.auth.dependencies import Authenticated, PlatformAdmin
from broker.kit.etags import etag_for, version_from_if_match
from broker.kit.pagination import (
    CursorQuery,
    CursorText,
    LimitQuery,
    Page,
    decode_cursor,
    encode_cursor,
)
from broker.kit.session import SessionDep
from catalog.departments import service
from catalog.departments.schemas import DepartmentCreate, DepartmentRead, DepartmentUpdate

router = APIRouter(prefix="/departments", tags=["departments"])


class DepartmentPage(Page[DepartmentRead]):
    pass


@router.get("", response_model=DepartmentPage)
async def list_departments(
    session: SessionDep, _caller: Authenticated, cursor: CursorQuery = None, limit: LimitQuery = 50
) -> DepartmentPage:
    position = decode_cursor(cursor, keys={"code": CursorText})
    rows = await service.list_departments(
        session=session, after_code=position["code"] if position else None, limit=limit + 1
    )
    next_cursor = encode_cursor({"code": rows[limit - 1].code}) if len(rows) > limit else None
    return DepartmentPage(
        items=[DepartmentRead.model_validate(d) for d in rows[:limit]], next_cursor=next_cursor
    )


@router.get("/{code}", response_model=DepartmentRead)
async def get_department(
    code: str, session: SessionDep, _caller: Authenticated, response: Response
) -> DepartmentRead:
    department = await service.get_by_code(session=session, code=code)
    response.headers["ETag"] = etag_for(department.version)
    return DepartmentRead.model_validate(department)


@router.post("", response_model=DepartmentRead, status_code=status.HTTP_201_CREATED)
async def create_department(
    body: DepartmentCreate,
    session: SessionDep,
    _admin: PlatformAdmin,
    actor: AuditActor,
    response: Response,
) -> DepartmentRead:
    department = await service.create(session=session, data=body)
    result = DepartmentRead.model_validate(department)
    await audit.record(
        session,
        actor,
        "department.created",
        AuditObject("department", department.code),
        details={"after": _auditable(result)},
    )
    await session.commit()
    response.headers["Location"] = f"/v1/departments/{department.code}"
    response.headers["ETag"] = etag_for(department.version)
    return result


@router.patch("/{code}", response_model=DepartmentRead)
async def update_department(
    code: str,
    body: DepartmentUpdate,
    session: SessionDep,
    _admin: PlatformAdmin,
    actor: AuditActor,
    response: Response,
    if_match: Annotated[
        str | None, Header(description="ETag from a GET; the update fails with 412 if stale.")
    ] = None,
) -> DepartmentRead:
    department = await service.get_by_code(session=session, code=code)
    before = _auditable(DepartmentRead.model_validate(department))
    department = await service.update(
        session=session,
        department=department,
        data=body,
        expected_version=version_from_if_match(if_match),
    )
    result = DepartmentRead.model_validate(department)
    await audit.record(
        session,
        actor,
        "department.updated",
        AuditObject("department", department.code),
        details=audit.changes(before, _auditable(result)),
    )
    await session.commit()
    response.headers["ETag"] = etag_for(department.version)
    return result


def _auditable(department: DepartmentRead) -> dict[str, object]:
    return department.model_dump(mode="json", include={"name", "kind", "parent_code", "version"})
