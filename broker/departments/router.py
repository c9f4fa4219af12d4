from fastapi import APIRouter, Response, status

from broker.audit.dependencies import AuditActor
from broker.auth.dependencies import Authenticated, PlatformAdmin
from broker.departments import service as departments
from broker.kit.etags import PRECONDITIONS, IfMatch, etag_for, required_version
from broker.kit.idempotency import Idempotent
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
    idempotency: Idempotent,
) -> DepartmentRead:
    department = await departments.create(session=session, actor=actor, data=body)
    response.headers["Location"] = f"/v1/departments/{department.code}"
    response.headers["ETag"] = etag_for(department.version)
    result = DepartmentRead.model_validate(department)
    await idempotency.remember(result, status_code=201, headers=dict(response.headers))
    return result


@router.patch("/{code}", response_model=DepartmentRead, responses=PRECONDITIONS)
async def update_department(
    code: str,
    body: DepartmentUpdate,
    session: SessionDep,
    _admin: PlatformAdmin,
    actor: AuditActor,
    response: Response,
    if_match: IfMatch = None,
) -> DepartmentRead:
    department = await service.get_by_code(session=session, code=code)
    department = await departments.update(
        session=session,
        actor=actor,
        department=department,
        data=body,
        expected_version=required_version(if_match, what="a department"),
    )
    response.headers["ETag"] = etag_for(department.version)
    return DepartmentRead.model_validate(department)
