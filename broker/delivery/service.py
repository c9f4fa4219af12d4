"""Releases in, data out: validate what owners deliver, hand it out only through grants.

The heavy work (reading, validating, transforming files) runs in worker threads and outside any
database transaction, so one large release never holds the database's write lock.
"""

import calendar
import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl
from openpyxl import Workbook
from sqlalchemy import ColumnElement, and_, case, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from broker.audit import service as audit
from broker.audit.service import Actor, AuditObject
from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.delivery import conditions, receipts
from broker.delivery.models import Copy, Receipt, Release, ReleaseStatus
from broker.delivery.schemas import (
    DepartmentFreshness,
    FreshnessReport,
    ReceiptAccount,
    ReceiptClaims,
    ReceiptData,
    ReceiptGrant,
    ReceiptRelease,
    StaleDataset,
)
from broker.delivery.storage import ReleaseStore
from broker.grants import service as grants
from broker.grants.models import Grant, GrantStatus
from broker.grants.schemas import Conditions
from broker.scenarios import service as scenarios
from broker.scenarios.models import MemberKind, Phase, Scenario, ScenarioMember
from catalog.access import Viewer
from catalog.contracts.reading import FileFormat, name_columns, read_file
from catalog.contracts.validation import Report, validate
from catalog.datasets import service as datasets
from catalog.datasets.models import DataItem, Dataset, effective_aggregation
from catalog.exports import safe_text_columns, xlsx_cell
from catalog.vocab import Aggregation, Freshness
from core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound

DownloadFormat = Literal["csv", "jsonl", "parquet", "xlsx"]
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
    "xlsx": XLSX_TYPE,
}
# An XLSX download is for reading in a spreadsheet: openpyxl writes some 10,000 rows a second, so
# past this it refuses and points to CSV or Parquet (Excel itself stops at 1,048,576 rows).
XLSX_MAX_ROWS = 100_000
# Excel shows integers past 15 digits rounded (an 18-digit number becomes 1.10101E+17): such
# values go in as text.
XLSX_EXACT_DIGITS = 10**15
HeaderChoice = Literal["codes", "names"]
# The columns a download adds to the items, as `header=names` labels them.
ADDED_COLUMN_NAMES = {
    "period_start": "数据起始日期",
    "period_end": "数据截止日期",
    "row_count": "记录数",
}
HASH_CHUNK = 1024 * 1024


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- releases in


@dataclass
class Staged:
    """An upload copied whole to the staging area, with what was learnt on the way."""

    path: Path
    filename: str | None
    size_bytes: int
    sha256: str


@dataclass
class Checked:
    report: Report
    sha256: str | None = None
    storage_key: str | None = None


def check_and_store(
    *,
    store: ReleaseStore,
    staged: Staged,
    file_format: FileFormat,
    items: Sequence[DataItem],
    max_rows: int,
) -> Checked:
    """Read and validate a staged upload; store it as Parquet only when every check passes.

    Blocking: call it from a worker thread.
    """
    scratch = store.staging_file(".csv")
    parquet = store.staging_file(".parquet")
    try:
        frame = name_columns(
            read_file(
                staged.path,
                file_format,
                items=items,
                filename=staged.filename,
                scratch=scratch,
                max_rows=max_rows,
            ),
            items,
        )
        typed, report = validate(frame, items)
        if not report.valid:
            return Checked(report)
        typed.select(item.code for item in items).write_parquet(parquet, compression="zstd")
        digest = file_sha256(parquet)
        return Checked(report, digest, store.put(parquet, digest))
    finally:
        scratch.unlink(missing_ok=True)
        parquet.unlink(missing_ok=True)


async def publishable(
    *, session: AsyncSession, viewer: Viewer, code: str, copy: Copy, refresh_platform_copy: bool
) -> Dataset:
    """The dataset the viewer may deliver this copy of: the owner's copy by the owner's stewards
    (or a platform admin); the platform's copy by the platform department's stewards (or a
    platform admin), and only of a dataset whose copy is at the platform (已归集)."""
    if copy == Copy.owner:
        dataset = await datasets.get_editable(session=session, viewer=viewer, code=code)
        if refresh_platform_copy:
            _require_platform_copy(dataset)
        return dataset
    if refresh_platform_copy:
        raise InvalidInput(
            "A platform copy cannot refresh itself; `refresh_platform_copy` marks an owner's "
            "release.",
            errors=[FieldError("body.refresh_platform_copy", "Leave it out or false.")],
        )
    dataset = await datasets.get_visible(session=session, viewer=viewer, code=code)
    if not (viewer.is_platform_admin or (viewer.is_platform and viewer.is_steward)):
        raise Forbidden(
            f"The platform copy of '{code}' is delivered by the platform department's stewards "
            f"or a platform admin; '{dataset.owner_code}' delivers its own copy (copy=owner)."
        )
    _require_platform_copy(dataset)
    return dataset


def _require_platform_copy(dataset: Dataset) -> None:
    if not dataset.aggregated:
        raise Forbidden(
            f"Dataset '{dataset.code}' has no copy at the platform (it is not 已归集, "
            "`aggregated`); only its owner's copy is delivered.",
            extra={"dataset": dataset.code},
        )


def in_force() -> ColumnElement[bool]:
    """A release that may be served: accepted, and not replaced by a declared correction."""
    successor = aliased(Release)
    return and_(
        Release.status == ReleaseStatus.accepted,
        ~select(successor.id).where(successor.supersedes_id == Release.id).exists(),
    )


def _overlaps(release: Release, period: tuple[date, date]) -> bool:
    return release.period_start <= period[1] and release.period_end >= period[0]


async def _corrected_release(
    *,
    session: AsyncSession,
    dataset: Dataset,
    copy: Copy,
    period: tuple[date, date],
    correction_of: uuid.UUID | None,
) -> Release | None:
    """One copy holds one version of each period: an accepted release overlapping another in
    force is refused unless it declares the one it corrects, which it then supersedes."""
    overlapping = list(
        (
            await session.scalars(
                select(Release)
                .where(
                    Release.dataset_id == dataset.id,
                    Release.copy == copy,
                    in_force(),
                    Release.period_start <= period[1],
                    Release.period_end >= period[0],
                )
                .order_by(Release.period_start, Release.id)
            )
        ).all()
    )
    corrected = None
    if correction_of is not None:
        corrected = await session.get(Release, correction_of)
        if (
            corrected is None
            or corrected.dataset_id != dataset.id
            or corrected.copy != copy
            or corrected.status != ReleaseStatus.accepted
        ):
            raise InvalidInput(
                f"'{dataset.code}' has no accepted {copy.value} release '{correction_of}' to "
                "correct.",
                errors=[FieldError("body.correction_of", "Name an accepted release of this copy.")],
            )
        if corrected not in overlapping:
            successor = await session.scalar(
                select(Release.id).where(Release.supersedes_id == corrected.id)
            )
            if successor is not None:
                raise Conflict(
                    f"Release {corrected.id} was already corrected by release {successor}; "
                    "correct that one.",
                    extra={"release_id": str(successor)},
                )
            raise InvalidInput(
                f"Release {corrected.id} covers {corrected.period_start} to "
                f"{corrected.period_end}, which {period[0]} to {period[1]} does not overlap.",
                errors=[FieldError("body.correction_of", "Name the release this one replaces.")],
            )
    others = [r for r in overlapping if r is not corrected]
    if others:
        existing = others[0]
        raise Conflict(
            f"The {copy.value} copy of '{dataset.code}' already holds release {existing.id} "
            f"for {existing.period_start} to {existing.period_end}, which {period[0]} to "
            f"{period[1]} overlaps; to replace it, upload with correction_of={existing.id}.",
            extra={"release_id": str(existing.id)},
        )
    return corrected


def check_period(period_start: date, period_end: date) -> None:
    if period_start > period_end:
        raise InvalidInput(
            f"The period starts ({period_start}) after it ends ({period_end}).",
            errors=[FieldError("body.period_end", "Give an end on or after the start.")],
        )


async def locked_dataset(*, session: AsyncSession, dataset_id: uuid.UUID) -> Dataset:
    """The dataset read afresh under a row lock (PostgreSQL; SQLite serialises writers), so two
    uploads of one period cannot both pass the overlap check."""
    await session.execute(select(Dataset.id).where(Dataset.id == dataset_id).with_for_update())
    return await session.get_one(Dataset, dataset_id, populate_existing=True)


async def record_release(
    *,
    session: AsyncSession,
    actor: Actor,
    dataset: Dataset,
    staged: Staged,
    file_format: FileFormat,
    period: tuple[date, date],
    checked: Checked,
    now: datetime,
    copy: Copy = Copy.owner,
    correction_of: uuid.UUID | None = None,
    refresh_platform_copy: bool = False,
) -> Release:
    """Keep the release (accepted or rejected); an accepted one freshens the dataset.

    An accepted release must not overlap another of its copy in force unless it is a declared
    correction (checked before any row is written, so a 409 leaves no release behind). With
    `refresh_platform_copy`, the same stored file also becomes the platform copy's release.
    """
    accepted = checked.report.valid
    corrected = refreshed = None
    if accepted:
        corrected = await _corrected_release(
            session=session, dataset=dataset, copy=copy, period=period, correction_of=correction_of
        )
        if refresh_platform_copy:
            await _corrected_release(
                session=session,
                dataset=dataset,
                copy=Copy.platform,
                period=period,
                correction_of=None,
            )
    release = Release(
        dataset=dataset,
        status=ReleaseStatus.accepted if accepted else ReleaseStatus.rejected,
        period_start=period[0],
        period_end=period[1],
        source_format=file_format.value,
        source_filename=staged.filename,
        source_sha256=staged.sha256,
        size_bytes=staged.size_bytes,
        row_count=checked.report.rows,
        sha256=checked.sha256,
        storage_key=checked.storage_key,
        report=checked.report.as_dict(),
        published_by=actor.subject or actor.client_id or "unknown",
        copy=copy,
        supersedes_id=corrected.id if corrected is not None else None,
    )
    session.add(release)
    if accepted and refresh_platform_copy:
        refreshed = Release(
            dataset=dataset,
            status=ReleaseStatus.accepted,
            period_start=period[0],
            period_end=period[1],
            source_format=release.source_format,
            source_filename=release.source_filename,
            source_sha256=release.source_sha256,
            size_bytes=release.size_bytes,
            row_count=release.row_count,
            sha256=release.sha256,
            storage_key=release.storage_key,
            report=release.report,
            published_by=release.published_by,
            copy=Copy.platform,
        )
        session.add(refreshed)
    if accepted:
        datasets.record_update(dataset, at=now, period_end=period[1])
    await session.flush()
    await audit.record(
        session,
        actor,
        "release.published" if accepted else "release.rejected",
        AuditObject("release", str(release.id)),
        details={
            "dataset": dataset.code,
            "rows": release.row_count,
            "bytes": release.size_bytes,
            "source_sha256": staged.sha256,
            "sha256": checked.sha256,
            "failed_checks": len(checked.report.checks),
            "copy": copy.value,
            "period_start": period[0].isoformat(),
            "period_end": period[1].isoformat(),
        },
    )
    if corrected is not None:
        await audit.record(
            session,
            actor,
            "release.corrected",
            AuditObject("release", str(corrected.id)),
            details={
                "dataset": dataset.code,
                "copy": copy.value,
                "corrected_by": str(release.id),
                "period_start": corrected.period_start.isoformat(),
                "period_end": corrected.period_end.isoformat(),
                "sha256": corrected.sha256,
                "new_sha256": release.sha256,
            },
        )
    if refreshed is not None:
        await audit.record(
            session,
            actor,
            "release.platform_copy_refreshed",
            AuditObject("release", str(refreshed.id)),
            details={
                "dataset": dataset.code,
                "from_release": str(release.id),
                "sha256": release.sha256,
                "period_start": period[0].isoformat(),
                "period_end": period[1].isoformat(),
            },
        )
    return release


async def visible_dataset_releases(*, session: AsyncSession, viewer: Viewer, code: str) -> Dataset:
    """The dataset whose releases the viewer may read: its own department's, or the platform."""
    dataset = await datasets.get_visible(session=session, viewer=viewer, code=code)
    if not (viewer.is_platform or viewer.department_id == dataset.owner_department_id):
        raise Forbidden(
            f"Releases of '{code}' are visible to '{dataset.owner_code}' and the platform; "
            "other departments receive data through a grant."
        )
    return dataset


async def list_releases(
    *, session: AsyncSession, dataset: Dataset, after: uuid.UUID | None, limit: int
) -> list[Release]:
    query = (
        select(Release).where(Release.dataset_id == dataset.id).order_by(Release.id).limit(limit)
    )
    if after is not None:
        query = query.where(Release.id > after)
    return list((await session.scalars(query)).all())


async def get_release(*, session: AsyncSession, dataset: Dataset, release_id: uuid.UUID) -> Release:
    release = await session.get(Release, release_id)
    if release is None or release.dataset_id != dataset.id:
        raise NotFound(f"Dataset '{dataset.code}' has no release '{release_id}'.")
    return release


OWNER_FIRST = case((Release.copy == Copy.owner, 0), else_=1)


async def latest_release(*, session: AsyncSession, dataset_id: uuid.UUID) -> Release | None:
    """The release in force of the latest period, of either copy, the owner's when both cover
    it (then the latest upload); not the latest upload: a late file for an old period does not
    displace the current one."""
    return await session.scalar(
        select(Release)
        .where(Release.dataset_id == dataset_id, in_force())
        .order_by(
            Release.period_end.desc(),
            OWNER_FIRST,
            Release.created_at.desc(),
            Release.id.desc(),
        )
        .limit(1)
    )


async def series(
    *, session: AsyncSession, dataset_id: uuid.UUID, start: date | None, end: date | None
) -> list[Release]:
    """The releases in force whose periods fall within [start, end], one per period, in period
    order: the owner's copy where both copies cover a period, so no period is delivered twice."""
    query = select(Release).where(Release.dataset_id == dataset_id, in_force())
    if start is not None:
        query = query.where(Release.period_start >= start)
    if end is not None:
        query = query.where(Release.period_end <= end)
    candidates = await session.scalars(
        query.order_by(OWNER_FIRST, Release.created_at.desc(), Release.id.desc())
    )
    chosen: list[Release] = []
    for release in candidates:
        if not any(_overlaps(c, (release.period_start, release.period_end)) for c in chosen):
            chosen.append(release)
    return sorted(chosen, key=lambda r: (r.period_start, r.period_end))


MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _period_bound(text: str, *, field: str, last: bool) -> date:
    """`YYYY-MM` (its first day, or its last for the end of a range) or `YYYY-MM-DD`."""
    try:
        month = MONTH.match(text)
        if month is None:
            return date.fromisoformat(text)
        year, number = int(month[1]), int(month[2])
        day = calendar.monthrange(year, number)[1] if last else 1
        return date(year, number, day)
    except ValueError as exc:
        raise InvalidInput(
            f"'{text}' is neither a month (YYYY-MM) nor a date (YYYY-MM-DD).",
            errors=[FieldError(f"query.{field}", "Give YYYY-MM or YYYY-MM-DD.")],
        ) from exc


def period_range(start: str | None, end: str | None) -> tuple[date | None, date | None]:
    """The days a `from`/`to` range covers: from the first day of `from` to the last of `to`."""
    first = _period_bound(start, field="from", last=False) if start is not None else None
    last = _period_bound(end, field="to", last=True) if end is not None else None
    if first is not None and last is not None and first > last:
        raise InvalidInput(
            f"The range starts ({start}) after it ends ({end}).",
            errors=[FieldError("query.from", "Give a start on or before `to`.")],
        )
    return first, last


# ---------------------------------------------------------------- data out


def _contractor_refusal(
    grant: Grant, scenario: Scenario, held: list[ScenarioMember], now: datetime
) -> Forbidden:
    """Why a contractor may not download now, from its latest listing on the scenario."""
    mine = [
        m
        for m in held
        if m.kind == MemberKind.contractor
        and m.acting_for_department_id == grant.grantee_department_id
    ]
    if not mine:
        why = f"you are not listed as a contractor of scenario '{scenario.code}' for it"
    else:
        last = mine[-1]
        if last.ended_at is not None:
            why = f"your access was ended at {last.ended_at.isoformat()} ({last.end_reason})"
        elif last.valid_from is not None and now < last.valid_from:
            why = f"your window opens at {last.valid_from.isoformat()}"
        else:
            assert last.valid_until is not None
            why = f"your window closed at {last.valid_until.isoformat()}"
    return Forbidden(
        f"Grant {grant.id} was issued to '{grant.grantee.code}'; {why}.",
        extra={"scenario": scenario.code},
    )


async def _check_takes_part(
    *, session: AsyncSession, principal: Principal, grant: Grant, now: datetime
) -> None:
    """Only the scenario's people download under its grants, and only while it lives (issue 14):
    the grantee's requesters while the grantee takes part in the scenario, the grantee's people
    listed as members, and contractors inside their window acting for the grantee."""
    scenario = await scenarios.get_by_id(session=session, scenario_id=grant.scenario_id)
    if scenario.phase == Phase.retired:
        raise Forbidden(
            f"Grant {grant.id} belongs to scenario '{scenario.code}', which is retired; "
            "nothing is delivered under it.",
            extra={"scenario": scenario.code},
        )
    held = await scenarios.memberships(
        session=session, account_id=principal.account_id, scenario_id=scenario.id
    )
    active = [
        m
        for m in held
        if m.active_at(now) and m.acting_for_department_id == grant.grantee_department_id
    ]
    if principal.department_id != grant.grantee_department_id:
        if Role.contractor not in principal.roles:
            raise Forbidden(
                f"Grant {grant.id} was issued to '{grant.grantee.code}'; only that department "
                "and its scenario's contractors download under it."
            )
        if not any(m.kind == MemberKind.contractor for m in active):
            raise _contractor_refusal(grant, scenario, held, now)
        return
    grantee_takes_part = (
        scenario.lead_department_id == grant.grantee_department_id
        or grant.grantee.code in scenario.members
    )
    if Role.requester in principal.roles and grantee_takes_part:
        return
    if any(m.kind == MemberKind.member for m in active):
        return
    raise Forbidden(
        f"Grant {grant.id} is for the people of scenario '{scenario.code}': the requesters of "
        f"'{grant.grantee.code}' while it takes part in the scenario, and the accounts the "
        f"lead lists as members (POST /v1/scenarios/{scenario.code}/members); you are neither.",
        extra={"scenario": scenario.code},
    )


def acting_for(principal: Principal, grant: Grant) -> str | None:
    """The department a contractor downloads for, recorded with its download; its own people
    act for themselves (None). Call only for a principal `downloadable` let through."""
    return grant.grantee.code if principal.department_id != grant.grantee_department_id else None


async def _delivering_grant(
    *, session: AsyncSession, principal: Principal, grant_id: uuid.UUID, now: datetime
) -> Grant:
    """A grant the principal may take data under now; every refusal says why (403s are
    audited). Listing a grant's releases is held to the same rules as downloading them."""
    grant = await grants.get(session=session, principal=principal, grant_id=grant_id)
    await _check_takes_part(session=session, principal=principal, grant=grant, now=now)
    state = grant.status_at(now)
    if state != GrantStatus.active:
        raise Forbidden(
            f"Grant {grant.id} is {state.value}; no data is delivered under it.",
            extra={"grant_status": state.value},
        )
    if grant.conditions.get("in_platform_only"):
        raise Forbidden(
            f"Grant {grant.id} allows in-platform use only; the data cannot be downloaded."
        )
    return grant


async def downloadable(
    *,
    session: AsyncSession,
    principal: Principal,
    grant_id: uuid.UUID,
    release_ref: str,
    now: datetime,
) -> tuple[Grant, Release]:
    """The grant and release a download may use; every refusal says why (and 403s are audited)."""
    grant = await _delivering_grant(
        session=session, principal=principal, grant_id=grant_id, now=now
    )
    if release_ref == "latest":
        release = await latest_release(session=session, dataset_id=grant.dataset_id)
        if release is None:
            raise NotFound(
                f"'{grant.dataset.code}' has no accepted release yet; ask "
                f"'{grant.owner.code}' to publish one."
            )
        return grant, release
    try:
        release_id = uuid.UUID(release_ref)
    except ValueError as exc:
        raise InvalidInput(
            f"'{release_ref}' is neither 'latest' nor a release id.",
            errors=[FieldError("query.release", "Use 'latest' or a release id.")],
        ) from exc
    release = await session.get(Release, release_id)
    if (
        release is None
        or release.dataset_id != grant.dataset_id
        or release.status != ReleaseStatus.accepted
    ):
        raise NotFound(f"'{grant.dataset.code}' has no accepted release '{release_ref}'.")
    successor = await session.scalar(select(Release.id).where(Release.supersedes_id == release.id))
    if successor is not None:
        raise NotFound(
            f"Release {release.id} of '{grant.dataset.code}' was corrected by release "
            f"{successor}; download that one.",
            extra={"release_id": str(successor)},
        )
    return grant, release


async def downloadable_series(
    *,
    session: AsyncSession,
    principal: Principal,
    grant_id: uuid.UUID,
    start: date | None,
    end: date | None,
    now: datetime,
) -> tuple[Grant, list[Release]]:
    """The grant and the releases of a range download, in period order (404 when none)."""
    grant = await _delivering_grant(
        session=session, principal=principal, grant_id=grant_id, now=now
    )
    chosen = await series(session=session, dataset_id=grant.dataset_id, start=start, end=end)
    if not chosen:
        raise NotFound(
            f"'{grant.dataset.code}' has no accepted release for a period from "
            f"{start or 'the first'} to {end or 'the last'}."
        )
    return grant, chosen


async def grant_releases(
    *,
    session: AsyncSession,
    principal: Principal,
    grant_id: uuid.UUID,
    after: tuple[date, uuid.UUID] | None,
    limit: int,
    now: datetime,
) -> list[Release]:
    """The releases a grantee may download under a grant, of both copies, in period order:
    accepted and in force only, so rejected files and replaced versions never show."""
    grant = await _delivering_grant(
        session=session, principal=principal, grant_id=grant_id, now=now
    )
    query = (
        select(Release)
        .where(Release.dataset_id == grant.dataset_id, in_force())
        .order_by(Release.period_start, Release.id)
        .limit(limit)
    )
    if after is not None:
        start, release_id = after
        query = query.where(
            (Release.period_start > start)
            | ((Release.period_start == start) & (Release.id > release_id))
        )
    return list((await session.scalars(query)).all())


@dataclass(frozen=True)
class Part:
    """One stored release file of a download, with the period it covers when the download
    carries the period columns."""

    storage_key: str
    period: tuple[date, date] | None = None


def parts_of(releases: Sequence[Release], *, periods: bool) -> list[Part]:
    parts = []
    for release in releases:
        assert release.storage_key is not None  # accepted releases are stored
        period = (release.period_start, release.period_end) if periods else None
        parts.append(Part(release.storage_key, period))
    return parts


@dataclass
class Extract:
    path: Path
    rows: int
    size_bytes: int
    sha256: str


def column_labels(items: Sequence[DataItem], header: HeaderChoice) -> dict[str, str]:
    """The header a download's columns carry: item codes (`codes`, for machines), or the items'
    names (信息项名称, `names`, for people), the added period and count columns named in Chinese
    too. Two columns that would share a name are told apart by their code."""
    if header == "codes":
        return {}
    labels = {item.code: item.name for item in items} | ADDED_COLUMN_NAMES
    taken: dict[str, int] = {}
    for label in labels.values():
        taken[label] = taken.get(label, 0) + 1
    return {
        column: label if taken[label] == 1 else f"{label} ({column})"
        for column, label in labels.items()
    }


def xlsx_value(value: Any) -> Any:
    """A cell as Excel must receive it: formula-like text quoted (`xlsx_cell`, as the CSV does),
    integers Excel would round kept as text."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= XLSX_EXACT_DIGITS:
        return str(value)
    return xlsx_cell(value)


def _write_xlsx(frame: pl.DataFrame, target: Path, *, sheet_name: str) -> None:
    """One sheet, header row first, written row by row (openpyxl's write-only mode keeps no
    cells in memory)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_name)
    sheet.append([xlsx_cell(name) for name in frame.columns])
    for row in frame.iter_rows():
        sheet.append([xlsx_value(value) for value in row])
    workbook.save(target)


def _check_xlsx_rows(rows: int) -> None:
    if rows > XLSX_MAX_ROWS:
        raise InvalidInput(
            f"The download has {rows} rows; XLSX is written for up to {XLSX_MAX_ROWS} rows "
            "(a spreadsheet to read, not a transfer).",
            errors=[
                FieldError(
                    "query.format",
                    "Use format=csv (opens in Excel too) or format=parquet, or a shorter "
                    "range of periods (`from`/`to`).",
                )
            ],
            extra={"rows": rows, "max_rows": XLSX_MAX_ROWS},
        )


def extract(
    *,
    store: ReleaseStore,
    parts: Sequence[Part],
    columns: Sequence[str],
    grant_conditions: dict[str, Any],
    aggregations: Mapping[str, Aggregation],
    salt: bytes,
    file_format: DownloadFormat,
    parquet_metadata: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    bom: bool = True,
    sheet_name: str = "data",
) -> Extract:
    """Write the grant's view of releases to a staging file, streaming (blocking: use a thread).

    Several parts (a range of periods) are each viewed as the grant says, then concatenated in
    the order given; a part with a period gains `period_start`/`period_end` columns. `labels`
    renames columns for the header (`column_labels`). A CSV starts with a UTF-8 byte order mark
    unless `bom` is false: without one, Excel on Chinese Windows reads UTF-8 as GBK. The mark
    is in the file, so the size and SHA-256 the receipt signs are of the bytes the client gets.
    An XLSX file is refused past `XLSX_MAX_ROWS` before anything is written.
    A Parquet file also carries `parquet_metadata` as its key-value metadata.
    """
    sources: list[tuple[Path, bool]] = []
    target = store.staging_file(f".{file_format}")
    try:
        views = []
        for part in parts:
            sources.append(store.local_path(part.storage_key))
            part_view = conditions.apply(
                pl.scan_parquet(sources[-1][0]),
                columns=columns,
                conditions=grant_conditions,
                aggregations=aggregations,
                salt=salt,
            )
            if part.period is not None:
                part_view = part_view.with_columns(
                    pl.lit(part.period[0], dtype=pl.Date).alias("period_start"),
                    pl.lit(part.period[1], dtype=pl.Date).alias("period_end"),
                )
            views.append(part_view)
        view = views[0] if len(views) == 1 else pl.concat(views, how="vertical_relaxed")
        if labels:
            view = view.rename(dict(labels), strict=False)
        if file_format == "xlsx":
            rows = view.select(pl.len()).collect().item()
            _check_xlsx_rows(rows)
            _write_xlsx(view.collect(engine="streaming"), target, sheet_name=sheet_name)
            return Extract(target, rows, target.stat().st_size, file_sha256(target))
        if file_format == "csv":
            safe_text_columns(view).sink_csv(target, include_bom=bom)
        elif file_format == "jsonl":
            view.sink_ndjson(target)
        else:
            view.sink_parquet(
                target,
                compression="zstd",
                metadata=dict(parquet_metadata) if parquet_metadata else None,
            )
        rows = view.select(pl.len()).collect().item()
        return Extract(target, rows, target.stat().st_size, file_sha256(target))
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        for source, temporary in sources:
            if temporary:
                source.unlink(missing_ok=True)


def aggregations(grant: Grant) -> dict[str, Aggregation]:
    """How each of the grant's dataset items combines if the grant aggregates to a level, as
    the catalog says now (`effective_aggregation`)."""
    return {item.code: effective_aggregation(item) for item in grant.dataset.items}


def parquet_metadata(*, grant: Grant, receipt_id: uuid.UUID) -> dict[str, str]:
    """What a Parquet download carries of its agreement, so the terms travel with the file."""
    terms = Conditions.model_validate(grant.conditions).model_dump(mode="json")
    metadata = {
        "broker.grant_id": str(grant.id),
        "broker.receipt_id": str(receipt_id),
        "broker.dataset": grant.dataset.code,
        "broker.terms": json.dumps(terms, ensure_ascii=False, sort_keys=True),
    }
    if grant.purpose is not None:
        metadata["broker.purpose"] = grant.purpose
    return metadata


async def record_download(
    *,
    session: AsyncSession,
    actor: Actor,
    principal: Principal,
    grant: Grant,
    releases: Sequence[Release],
    file_format: str,
    result: Extract,
    receipt_id: uuid.UUID,
    issuer: str,
    now: datetime,
    acting_for: str | None = None,
    ranged: bool = False,
) -> Receipt:
    """Record a download and sign its receipt, in one transaction: no data leaves unrecorded.

    `releases`: what was served, in period order; a range (`ranged`) lists each in the receipt.
    `acting_for`: the department a contractor downloads for (its receipt names it).
    """
    release, first = releases[-1], releases[0]
    receipt = await receipts.issue(
        session=session,
        claims=ReceiptClaims(
            iss=issuer,
            iat=int(now.timestamp()),
            jti=receipt_id,
            grant=ReceiptGrant(
                id=grant.id,
                scenario_id=grant.scenario_id,
                purpose=grant.purpose,
                terms=Conditions.model_validate(grant.conditions),
                columns=list(grant.columns),
                grantee=grant.grantee.code,
                owner=grant.owner.code,
            ),
            data=ReceiptData(
                dataset=grant.dataset.code,
                release_id=release.id,
                copy_=release.copy,
                period_start=first.period_start,
                period_end=release.period_end,
                releases=[
                    ReceiptRelease(
                        id=r.id, copy_=r.copy, period_start=r.period_start, period_end=r.period_end
                    )
                    for r in releases
                ]
                if ranged
                else [],
                format=file_format,
                rows=result.rows,
                size_bytes=result.size_bytes,
                sha256=result.sha256,
            ),
            account=ReceiptAccount(
                subject=principal.subject,
                account_id=principal.account_id,
                client_id=principal.client_id,
                department=principal.department_code,
                acting_for=acting_for,
            ),
        ),
        now=now,
    )
    await audit.record(
        session,
        actor,
        "data.downloaded",
        AuditObject("grant", str(grant.id)),
        details={
            "dataset": grant.dataset.code,
            "purpose": grant.purpose,
            "scenario": str(grant.scenario_id),
            "release": str(release.id),
            "copy": release.copy.value,
            "releases": [str(r.id) for r in releases] if ranged else None,
            "format": file_format,
            "rows": result.rows,
            "bytes": result.size_bytes,
            "sha256": result.sha256,
            "columns": grant.columns,
            "receipt": str(receipt.id),
            "acting_for": acting_for,
        },
    )
    return receipt


def freshness_report(behind: list[Dataset], now: datetime) -> FreshnessReport:
    """Group datasets falling behind by owner, counting due and stale ones."""
    grouped: dict[str, DepartmentFreshness] = {}
    for dataset in behind:
        state = datasets.freshness_of(dataset, now)
        group = grouped.setdefault(
            dataset.owner.code,
            DepartmentFreshness(
                department_code=dataset.owner.code,
                department_name=dataset.owner.name,
                due=0,
                stale=0,
                datasets=[],
            ),
        )
        if state == Freshness.stale:
            group.stale += 1
        else:
            group.due += 1
        group.datasets.append(
            StaleDataset(
                code=dataset.code,
                title=dataset.title,
                update_cycle=dataset.update_cycle,
                publication_lag_days=dataset.publication_lag_days,
                last_updated_at=dataset.last_updated_at,
                latest_period_end=dataset.latest_period_end,
                due_at=dataset.due_at,
                stale_at=dataset.stale_at,
                freshness=state,
            )
        )
    return FreshnessReport(as_of=now, departments=list(grouped.values()))
