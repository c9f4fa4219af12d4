import codecs
import json
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy import select

from broker.audit.dependencies import AuditActor
from broker.auth.dependencies import CatalogViewer
from broker.config import Settings
from broker.datasets.router import Maintainer
from broker.kit.heavy_work import HeavyWorkDep
from broker.kit.session import SessionDep
from broker.sheets import service as catalog_import
from catalog import dcat
from catalog.datasets.models import Dataset
from catalog.sheets import io as sheet_io
from catalog.sheets import service as sheets
from catalog.vocab import DatasetStatus
from core.errors import FieldError, TooLarge

router = APIRouter(prefix="/catalog", tags=["catalog"])
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Below this a sheet is checked in well under a second: not worth starting a process for.
CHECK_IN_PROCESS_ABOVE_BYTES = 256 * 1024


class ImportWarning(BaseModel):
    """What the import read past or read generously; nothing in it stops the import."""

    location: str = Field(examples=["row 5, 提供单位"])
    message: str = Field(examples=["resolved 统计局 as 区统计局 (stats)."])


class ImportResult(BaseModel):
    dry_run: bool
    rows: int
    created: list[str]
    updated: dict[str, list[str]]
    unchanged: list[str]
    warnings: list[ImportWarning] = Field(
        description="Columns ignored (序号, 备注 ...), rows skipped (title, 填报 and footer "
        "rows), and values read generously (a department's short name, codes given to items "
        "without one, 敏感级别 read per item). Check them in a dry run."
    )


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes, refusing as soon as it passes the limit."""
    chunks, size = [], 0
    while chunk := await upload.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise TooLarge(
                f"The sheet is over {limit} bytes; split it or raise BROKER_MAX_IMPORT_BYTES.",
                errors=[FieldError("body.file", "Upload a smaller file.")],
            )
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/import", response_model=ImportResult)
async def import_catalog_sheet(
    request: Request,
    session: SessionDep,
    _maintainer: Maintainer,
    viewer: CatalogViewer,
    actor: AuditActor,
    heavy_work: HeavyWorkDep,
    file: Annotated[
        UploadFile,
        File(
            description="目录 sheet: XLSX, XLS, ODS, or CSV/TSV text (UTF-8, GBK or UTF-16); "
            "the header row may sit below title rows."
        ),
    ],
    dry_run: Annotated[
        bool, Query(description="Report what would change without writing anything.")
    ] = False,
) -> ImportResult:
    """Create or update datasets from a 目录 sheet, all or nothing, matched by codes."""
    settings: Settings = request.app.state.settings
    data = await _read_limited(file, settings.max_import_bytes)
    owners = await sheets.owners(session=session)
    # Checking a large sheet takes seconds: commit the read, so no transaction is held meanwhile.
    await session.commit()
    check = partial(
        sheets.check_sheet,
        data=data,
        owners=owners,
        viewer=viewer,
        filename=file.filename or None,
    )
    if len(data) > CHECK_IN_PROCESS_ABOVE_BYTES:
        sheet = await heavy_work.run_in_process(check)
    else:
        sheet = await heavy_work.run(check)
    plan = await catalog_import.import_sheet(
        session=session,
        actor=actor,
        viewer=viewer,
        sheet=sheet,
        source=file.filename or None,
        dry_run=dry_run,
    )
    return ImportResult(
        dry_run=dry_run,
        rows=plan.rows,
        created=plan.created,
        updated=plan.updated,
        unchanged=plan.unchanged,
        warnings=[ImportWarning(location=w.location, message=w.message) for w in plan.warnings],
    )


@router.get(
    "/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, XLSX_TYPE: {}}, "description": "目录 sheet"}},
)
async def export_catalog_sheet(
    session: SessionDep,
    viewer: CatalogViewer,
    heavy_work: HeavyWorkDep,
    format: Annotated[Literal["csv", "xlsx"], Query(description="csv or xlsx")] = "csv",
    bom: Annotated[
        bool,
        Query(
            description="CSV only: start with a UTF-8 byte order mark (the default), so Excel "
            "on Chinese Windows shows the sheet as Chinese; `false` for machines."
        ),
    ] = True,
) -> Response:
    """The catalog in the import layout (one row per item); it re-imports with no changes."""
    rows = await sheets.export_rows(session=session, viewer=viewer)
    write, media = (
        (sheet_io.write_xlsx, XLSX_TYPE)
        if format == "xlsx"
        else (sheet_io.write_csv, "text/csv; charset=utf-8")
    )
    content = await heavy_work.run(lambda: write(rows))
    if format == "csv" and not bom:
        content = content.removeprefix(codecs.BOM_UTF8)
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="catalog.{format}"'},
    )


@router.get(
    "/dcat",
    response_class=Response,
    responses={200: {"content": {"application/ld+json": {}}, "description": "DCAT-AP 3"}},
)
async def export_catalog_dcat(
    request: Request, session: SessionDep, _viewer: CatalogViewer
) -> Response:
    """Published datasets as DCAT-AP 3 JSON-LD, for harvesters such as CKAN's ckanext-dcat."""
    settings: Settings = request.app.state.settings
    published = (
        await session.scalars(
            select(Dataset).where(Dataset.status == DatasetStatus.published).order_by(Dataset.code)
        )
    ).all()
    document = dcat.catalog_document(
        list(published), base_url=settings.public_base_url, title="政务数据资源目录"
    )
    return Response(json.dumps(document, ensure_ascii=False), media_type="application/ld+json")
