import base64
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from broker.audit.dependencies import AuditActor
from broker.auth.dependencies import Authenticated, CatalogViewer, require_roles
from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.config import Settings
from broker.datasets.router import Maintainer
from broker.delivery import receipts, service
from broker.delivery.models import Copy, Receipt, Release
from broker.delivery.schemas import (
    FreshnessReport,
    GrantRelease,
    GrantReleasePage,
    ReceiptPage,
    ReceiptRead,
    ReleasePage,
    ReleaseRead,
    ValidationReport,
)
from broker.delivery.service import (
    MEDIA_TYPES,
    XLSX_MAX_ROWS,
    DownloadFormat,
    HeaderChoice,
    Staged,
)
from broker.delivery.storage import ReleaseStore
from broker.kit.heavy_work import HeavyWorkDep
from broker.kit.idempotency import Idempotent
from broker.kit.pagination import (
    CursorId,
    CursorMoment,
    CursorQuery,
    LimitQuery,
    decode_cursor,
    encode_cursor,
)
from broker.kit.session import SessionDep, writes_on_read
from catalog.contracts.reading import FileFormat, format_of
from catalog.datasets import service as datasets
from core.errors import FieldError, InvalidInput, TooLarge, ValidationFailed
from core.time import EARLIEST, LATEST, utcnow

FIRST_DAY, LAST_DAY = EARLIEST.date(), LATEST.date()

router = APIRouter(tags=["delivery"])
# Contractors too: `downloadable` holds them to their scenario, window and lead department.
Recipient = Annotated[
    Principal, Depends(require_roles(Role.requester, Role.steward, Role.contractor))
]
CHUNK = 1024 * 1024


def read(release: Release) -> ReleaseRead:
    return ReleaseRead(
        id=release.id,
        dataset_code=release.dataset.code,
        status=release.status,
        copy_=release.copy,
        supersedes_id=release.supersedes_id,
        period_start=release.period_start,
        period_end=release.period_end,
        source_format=release.source_format,
        source_filename=release.source_filename,
        source_sha256=release.source_sha256,
        size_bytes=release.size_bytes,
        row_count=release.row_count,
        sha256=release.sha256,
        report=ValidationReport.model_validate(release.report),
        published_by=release.published_by,
        created_at=release.created_at,
    )


def _store(request: Request) -> ReleaseStore:
    store: ReleaseStore = request.app.state.release_store
    return store


async def _stage(upload: UploadFile, store: ReleaseStore, limit: int) -> Staged:
    """Copy the upload to staging chunk by chunk, hashing it; refuse it past the limit."""
    path = store.staging_file(Path(upload.filename or "").suffix.lower()[:10])
    digest, size = hashlib.sha256(), 0
    try:
        async with await anyio.open_file(path, "wb") as sink:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(
                        f"The release is over {limit} bytes; split it by period or raise "
                        "BROKER_MAX_RELEASE_BYTES.",
                        errors=[FieldError("body.file", "Upload a smaller file.")],
                    )
                digest.update(chunk)
                await sink.write(chunk)
    except BaseException:
        await anyio.Path(path).unlink(missing_ok=True)
        raise
    return Staged(path, upload.filename, size, digest.hexdigest())


@router.post(
    "/datasets/{code}/releases",
    status_code=status.HTTP_201_CREATED,
    response_model=ReleaseRead,
    responses={
        422: {
            "description": "The data broke the declared schema (the problem carries `release_id` "
            "and the `report`; the rejected release is kept), or the request was malformed."
        }
    },
)
async def publish_release(
    code: str,
    request: Request,
    response: Response,
    session: SessionDep,
    _maintainer: Maintainer,
    viewer: CatalogViewer,
    actor: AuditActor,
    heavy_work: HeavyWorkDep,
    idempotency: Idempotent,
    file: Annotated[
        UploadFile, File(description="CSV (UTF-8 or GBK), XLSX, JSON Lines or Parquet.")
    ],
    period_start: Annotated[
        date, Form(ge=FIRST_DAY, le=LAST_DAY, description="First day the data covers.")
    ],
    period_end: Annotated[
        date, Form(ge=FIRST_DAY, le=LAST_DAY, description="Last day the data covers.")
    ],
    format: Annotated[
        FileFormat | None, Form(description="Overrides the format told by the file name.")
    ] = None,
    copy_: Annotated[
        Copy,
        Form(
            alias="copy",
            description="`owner` (the owner's stewards), or `platform`: the platform's copy of "
            "a dataset aggregated at the platform (已归集), by the platform department's "
            "stewards or a platform admin.",
        ),
    ] = Copy.owner,
    correction_of: Annotated[
        uuid.UUID | None,
        Form(
            description="The accepted release of the same copy this one corrects: it replaces "
            "it (an overlapping period is otherwise a 409)."
        ),
    ] = None,
    refresh_platform_copy: Annotated[
        bool,
        Form(
            description="An owner's release also becomes the platform copy's release of the "
            "period (the same stored file; the dataset must be 已归集)."
        ),
    ] = False,
) -> ReleaseRead:
    """Deliver data for a dataset: validated against the declared items.

    Headers may be item codes or names. A valid file becomes a release in force of its copy and
    freshens the dataset; an invalid one is kept as `rejected` with a report naming the failing
    rows. One copy holds one release per period: an overlapping period is refused (409) unless
    the upload declares `correction_of`.
    """
    settings: Settings = request.app.state.settings
    store = _store(request)
    dataset = await service.publishable(
        session=session,
        viewer=viewer,
        code=code,
        copy=copy_,
        refresh_platform_copy=refresh_platform_copy,
    )
    service.check_period(period_start, period_end)
    file_format = format_of(file.filename, format)
    dataset_id, items = dataset.id, list(dataset.items)
    # Validation can take seconds: commit the reads, so no transaction is held meanwhile.
    await session.commit()
    staged = await _stage(file, store, settings.max_release_bytes)
    try:
        checked = await heavy_work.run(
            lambda: service.check_and_store(
                store=store,
                staged=staged,
                file_format=file_format,
                items=items,
                max_rows=settings.max_release_rows,
            )
        )
    finally:
        await anyio.Path(staged.path).unlink(missing_ok=True)
    # re-read: the dataset may have changed while the file was being checked
    dataset = await service.locked_dataset(session=session, dataset_id=dataset_id)
    release = await service.record_release(
        session=session,
        actor=actor,
        dataset=dataset,
        staged=staged,
        file_format=file_format,
        period=(period_start, period_end),
        checked=checked,
        now=utcnow(),
        copy=copy_,
        correction_of=correction_of,
        refresh_platform_copy=refresh_platform_copy,
    )
    result = read(release)
    if not checked.report.valid:
        # A rejected release is kept with its report: commit it before answering 422, which
        # SessionDep would roll back.
        await session.commit()
        failed = ", ".join(f"{c.column or '*'}: {c.check}" for c in checked.report.checks[:5])
        raise ValidationFailed(
            f"The file broke {len(checked.report.checks)} check(s) ({failed}); it was kept as "
            f"rejected release {release.id} and is not visible to anyone receiving the data.",
            errors=[FieldError("body.file", "Fix the rows named in the report and upload again.")],
            extra={"release_id": str(release.id), "report": result.report.model_dump()},
        )
    response.headers["Location"] = f"/v1/datasets/{code}/releases/{release.id}"
    await idempotency.remember(result, status_code=201, headers=dict(response.headers))
    return result


@router.get("/datasets/{code}/releases", response_model=ReleasePage)
async def list_releases(
    code: str,
    session: SessionDep,
    viewer: CatalogViewer,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> ReleasePage:
    """Releases of a dataset, accepted and rejected, with their reports (owner and platform)."""
    position = decode_cursor(cursor, keys={"id": CursorId})
    dataset = await service.visible_dataset_releases(session=session, viewer=viewer, code=code)
    rows = await service.list_releases(
        session=session,
        dataset=dataset,
        after=position["id"] if position else None,
        limit=limit + 1,
    )
    next_cursor = encode_cursor({"id": str(rows[limit - 1].id)}) if len(rows) > limit else None
    return ReleasePage(items=[read(r) for r in rows[:limit]], next_cursor=next_cursor)


@router.get("/datasets/{code}/releases/{release_id}", response_model=ReleaseRead)
async def get_release(
    code: str, release_id: uuid.UUID, session: SessionDep, viewer: CatalogViewer
) -> ReleaseRead:
    dataset = await service.visible_dataset_releases(session=session, viewer=viewer, code=code)
    return read(await service.get_release(session=session, dataset=dataset, release_id=release_id))


async def _stream(path: Path) -> AsyncIterator[bytes]:
    try:
        async with await anyio.open_file(path, "rb") as handle:
            while chunk := await handle.read(CHUNK):
                yield chunk
    finally:
        await anyio.Path(path).unlink(missing_ok=True)


@router.get(
    "/grants/{grant_id}/data",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The data as the grant allows it: granted columns, masked, filtered.",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in MEDIA_TYPES.values()
            },
            "headers": {
                "X-Receipt": {
                    "description": "The download's receipt: a compact JWS (typ "
                    "`broker-receipt+jwt`) signed with the keys of /.well-known/jwks.json.",
                    "schema": {"type": "string"},
                },
                "X-Receipt-Id": {
                    "description": "Its id, for GET /v1/receipts/{receipt_id}.",
                    "schema": {"type": "string", "format": "uuid"},
                },
                "X-Release-Id": {
                    "description": "The release served; for a range, each, in period order "
                    "(comma-separated).",
                    "schema": {"type": "string"},
                },
                "X-Release-Copy": {
                    "description": "Whose copy was served (`owner` or `platform`); for a range, "
                    "each release's, in period order (comma-separated).",
                    "schema": {"type": "string"},
                },
            },
        },
        403: {"description": "The grant is expired, revoked or suspended, or not yours."},
    },
)
@writes_on_read  # records the download's receipt and audit event
async def download_grant_data(
    grant_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Recipient,
    actor: AuditActor,
    heavy_work: HeavyWorkDep,
    format: Annotated[
        DownloadFormat,
        Query(
            description="csv, jsonl, parquet or xlsx. XLSX is for reading in a spreadsheet: up "
            f"to {XLSX_MAX_ROWS} rows (more is a 422 pointing to csv or parquet); text that "
            "starts with = + - @ is quoted with an apostrophe, as in the CSV."
        ),
    ] = "csv",
    header: Annotated[
        HeaderChoice,
        Query(
            description="The header row: `codes` (item codes, for machines; the default) or "
            "`names` (the items' names, 信息项名称, for people; the period and count columns "
            "as 数据起始日期, 数据截止日期, 记录数). Every format."
        ),
    ] = "codes",
    bom: Annotated[
        bool,
        Query(
            description="CSV only: start with a UTF-8 byte order mark (the default), so Excel "
            "on Chinese Windows reads the text as UTF-8; `false` for machines that do not skip "
            "it. The receipt's SHA-256 is of the bytes sent, the mark included."
        ),
    ] = True,
    release: Annotated[
        str, Query(description="`latest` or a release id.", max_length=64)
    ] = "latest",
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            description="A range of periods from this month (YYYY-MM) or day (YYYY-MM-DD): "
            "every release whose period falls within `from`..`to`, concatenated in period "
            "order with `period_start`/`period_end` columns.",
            max_length=10,
        ),
    ] = None,
    to: Annotated[
        str | None,
        Query(description="The range's last month (YYYY-MM) or day (YYYY-MM-DD).", max_length=10),
    ] = None,
    periods: Annotated[
        bool, Query(description="Add `period_start`/`period_end` columns to one release.")
    ] = False,
) -> StreamingResponse:
    """Download a dataset through a grant (the grantee department): the latest period, one
    release, or a range of periods. Where the owner and the platform both hold a period, the
    owner's copy is served. Every download is audited and carries a signed receipt
    (`X-Receipt`, kept for both departments under /v1/grants/{grant_id}/receipts).

    For people: CSV opens in Excel as Chinese (it starts with a byte order mark; `bom=false`
    for machines), `format=xlsx` gives a workbook, and `header=names` heads the columns with
    the items' names instead of their codes."""
    store = _store(request)
    settings: Settings = request.app.state.settings
    ranged = from_ is not None or to is not None
    if ranged:
        if release != "latest":
            raise InvalidInput(
                "Ask for one release or for a range of periods, not both.",
                errors=[FieldError("query.release", "Leave it out with `from`/`to`.")],
            )
        start, end = service.period_range(from_, to)
        grant, served = await service.downloadable_series(
            session=session,
            principal=principal,
            grant_id=grant_id,
            start=start,
            end=end,
            now=utcnow(),
        )
    else:
        grant, chosen = await service.downloadable(
            session=session,
            principal=principal,
            grant_id=grant_id,
            release_ref=release,
            now=utcnow(),
        )
        served = [chosen]
    parts, columns = service.parts_of(served, periods=ranged or periods), list(grant.columns)
    labels, sheet_name = service.column_labels(grant.dataset.items, header), grant.dataset.code[:31]
    grant_conditions, salt = dict(grant.conditions), bytes.fromhex(grant.mask_salt)
    aggregations = service.aggregations(grant)
    receipt_id = uuid.uuid4()
    parquet_metadata = service.parquet_metadata(grant=grant, receipt_id=receipt_id)
    # Extracting can take seconds: commit the reads, so no transaction is held meanwhile.
    await session.commit()
    result = await heavy_work.run(
        lambda: service.extract(
            store=store,
            parts=parts,
            columns=columns,
            grant_conditions=grant_conditions,
            aggregations=aggregations,
            salt=salt,
            file_format=format,
            parquet_metadata=parquet_metadata,
            labels=labels,
            bom=bom,
            sheet_name=sheet_name,
        )
    )
    try:
        receipt = await service.record_download(
            session=session,
            actor=actor,
            principal=principal,
            grant=grant,
            releases=served,
            file_format=format,
            result=result,
            receipt_id=receipt_id,
            issuer=settings.issuer,
            now=utcnow(),
            acting_for=service.acting_for(principal, grant),
            ranged=ranged,
        )
        # Commit here rather than in SessionDep: if the record fails, the extract is removed
        # (the stream that would remove it never starts) and no data leaves unrecorded.
        await session.commit()
    except BaseException:
        await anyio.Path(result.path).unlink(missing_ok=True)
        raise
    first, last = served[0], served[-1]
    covered = last.period_end.isoformat()
    if ranged:
        covered = f"{first.period_start.isoformat()}-{covered}"
    filename = f"{grant.dataset.code}-{covered}.{format}"
    return StreamingResponse(
        _stream(result.path),
        media_type=MEDIA_TYPES[format],
        headers={
            "Content-Length": str(result.size_bytes),
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Release-Id": ", ".join(str(r.id) for r in served),
            "X-Release-Copy": ", ".join(r.copy.value for r in served),
            "X-Row-Count": str(result.rows),
            "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(result.sha256)).decode()}:",
            "X-Receipt": receipt.jws,
            "X-Receipt-Id": str(receipt.id),
        },
    )


@router.get("/grants/{grant_id}/releases", response_model=GrantReleasePage)
async def list_grant_releases(
    grant_id: uuid.UUID,
    session: SessionDep,
    principal: Recipient,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> GrantReleasePage:
    """The releases a grant delivers, of either copy, in period order: what periods the grantee
    can download (`release=<id>`, or `from`/`to`), never rejected or replaced files. Held to the
    rules of downloading (the grantee's people, an active grant)."""
    position = decode_cursor(cursor, keys={"p": date, "i": CursorId})
    rows = await service.grant_releases(
        session=session,
        principal=principal,
        grant_id=grant_id,
        after=(position["p"], position["i"]) if position else None,
        limit=limit + 1,
        now=utcnow(),
    )
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor({"p": last.period_start.isoformat(), "i": str(last.id)})
    return GrantReleasePage(
        items=[
            GrantRelease(
                id=r.id,
                copy_=r.copy,
                period_start=r.period_start,
                period_end=r.period_end,
                row_count=r.row_count,
                sha256=r.sha256 or "",
                created_at=r.created_at,
            )
            for r in rows[:limit]
        ],
        next_cursor=next_cursor,
    )


def receipt_read(receipt: Receipt) -> ReceiptRead:
    return ReceiptRead(
        id=receipt.id,
        grant_id=receipt.grant_id,
        release_id=receipt.release_id,
        account_subject=receipt.account_subject,
        sha256=receipt.sha256,
        created_at=receipt.created_at,
        jws=receipt.jws,
        claims=receipts.claims_of(receipt),
    )


@router.get("/grants/{grant_id}/receipts", response_model=ReceiptPage)
async def list_receipts(
    grant_id: uuid.UUID,
    session: SessionDep,
    principal: Authenticated,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> ReceiptPage:
    """The signed receipts of a grant's downloads, oldest first (the grantee, the owner, the
    platform and auditors; 404 for anyone else, as for the grant)."""
    position = decode_cursor(cursor, keys={"t": CursorMoment, "i": CursorId})
    rows = await receipts.list_for_grant(
        session=session,
        principal=principal,
        grant_id=grant_id,
        after=(position["t"], position["i"]) if position else None,
        limit=limit + 1,
    )
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor({"t": last.created_at.isoformat(), "i": str(last.id)})
    return ReceiptPage(items=[receipt_read(r) for r in rows[:limit]], next_cursor=next_cursor)


@router.get("/receipts/{receipt_id}", response_model=ReceiptRead)
async def get_receipt(
    receipt_id: uuid.UUID, session: SessionDep, principal: Authenticated
) -> ReceiptRead:
    """One download's receipt; `broker receipts verify` checks it offline."""
    return receipt_read(
        await receipts.get(session=session, principal=principal, receipt_id=receipt_id)
    )


@router.get("/freshness", response_model=FreshnessReport)
async def freshness_report(
    session: SessionDep,
    _principal: Authenticated,
    department: Annotated[
        str | None, Query(description="Only this department's datasets (its code).", max_length=64)
    ] = None,
) -> FreshnessReport:
    """Published datasets due for an update or stale, by owning department."""
    now = utcnow()
    behind = await datasets.falling_behind(session=session, now=now, department_code=department)
    return service.freshness_report(behind, now)
