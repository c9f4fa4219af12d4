from functools import partial
from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile, status

from broker.audit.dependencies import AuditActor
from broker.auth.dependencies import Authenticated, PlatformAdmin
from broker.departments import onboarding
from broker.departments import service as departments
from broker.departments.schemas import DirectoryImportResult
from broker.kit.etags import PRECONDITIONS, IfMatch, etag_for, required_version
from broker.kit.heavy_work import HeavyWorkDep
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
# Not under /departments: `/departments/import` would also name a department coded `import`.
imports_router = APIRouter(prefix="/imports", tags=["departments"])
LIST_FORMATS = "CSV, TSV or text (UTF-8, GBK or UTF-16), XLSX, XLS or ODS"
DryRun = Annotated[
    bool, Query(description="Check the whole list and report what would change; write nothing.")
]


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


@imports_router.post("/departments", response_model=DirectoryImportResult)
async def import_departments(
    session: SessionDep,
    _admin: PlatformAdmin,
    actor: AuditActor,
    heavy_work: HeavyWorkDep,
    file: Annotated[
        UploadFile,
        File(
            description=f"Department list ({LIST_FORMATS}): 部门编码/code, 部门名称/name, "
            "部门类型/kind and optionally 上级部门/parent."
        ),
    ],
    dry_run: DryRun = False,
) -> DirectoryImportResult:
    """Register a district's departments from one list, all or nothing.

    Existing departments the list repeats are unchanged; changed names and parents are updated;
    a changed kind is refused. Every problem is named by its row as the sheet shows it.
    """
    data = await file.read()
    listing = await heavy_work.run(
        partial(onboarding.read_departments, data, filename=file.filename, location="body.file")
    )
    plan = await onboarding.import_departments(
        session=session, actor=actor, listing=listing, source=file.filename, dry_run=dry_run
    )
    return DirectoryImportResult(dry_run=dry_run, **vars(plan))
