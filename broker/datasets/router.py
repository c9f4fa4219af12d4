from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response, status

from broker.audit import service as audit
from broker.audit.dependencies import AuditActor
from broker.audit.service import AuditObject
from broker.auth.dependencies import CatalogViewer, require_roles
from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.kit.etags import etag_for, version_from_if_match
from broker.kit.pagination import (
    CursorMoment,
    CursorQuery,
    CursorScore,
    CursorText,
    LimitQuery,
    decode_cursor,
    encode_cursor,
)
from broker.kit.session import SessionDep
from catalog.datasets import service
from catalog.datasets.models import DataItem, Dataset
from catalog.datasets.schemas import (
    DataItemRead,
    DataItemsReplace,
    DatasetCreate,
    DatasetRead,
    DatasetSearchPage,
    DatasetSummary,
    DatasetUpdate,
    FacetCount,
    ItemHit,
    ItemSearchPage,
)
from catalog.vocab import (
    BaseKind,
    Category,
    DataGrade,
    DatasetStatus,
    Freshness,
    Sensitivity,
    ShareType,
    UpdateCycle,
)
from core.errors import PreconditionRequired

router = APIRouter(tags=["catalog"])
Maintainer = Annotated[Principal, Depends(require_roles(Role.steward, Role.platform_admin))]
IfMatch = Annotated[
    str | None,
    Header(description="ETag from a GET; required (428 without it, 412 when stale)."),
]
# A 428 answer makes the refined OpenAPI document declare If-Match required.
PRECONDITIONS: dict[int | str, dict[str, Any]] = {
    412: {"description": "If-Match names a version that is no longer current; GET it again."},
    428: {"description": "If-Match is missing; send the ETag from your last GET."},
}


def summary(dataset: Dataset, *, score: int | None, item_count: int) -> DatasetSummary:
    return DatasetSummary(
        id=dataset.id,
        code=dataset.code,
        title=dataset.title,
        owner_department_code=dataset.owner.code,
        owner_department_name=dataset.owner.name,
        category=dataset.category,
        base_kind=dataset.base_kind,
        share_type=dataset.share_type,
        open_type=dataset.open_type,
        data_grade=dataset.data_grade,
        sensitivity=dataset.sensitivity,
        update_cycle=dataset.update_cycle,
        publication_lag_days=dataset.publication_lag_days,
        aggregated=dataset.aggregated,
        status=dataset.status,
        last_updated_at=dataset.last_updated_at,
        freshness=service.freshness_of(dataset),
        due_at=dataset.due_at,
        item_count=item_count,
        version=dataset.version,
        updated_at=dataset.updated_at,
        score=score,
    )


def item_read(item: DataItem, dataset: Dataset) -> DataItemRead:
    return DataItemRead(
        code=item.code,
        name=item.name,
        description=item.description,
        data_type=item.data_type,
        unit=item.unit,
        nullable=item.nullable,
        is_key=item.is_key,
        constraints=item.constraints,
        sensitivity=item.sensitivity,
        effective_sensitivity=service.effective_sensitivity(item, dataset),
    )


def read(dataset: Dataset) -> DatasetRead:
    base = summary(dataset, score=None, item_count=len(dataset.items))
    return DatasetRead(
        **base.model_dump(),
        description=dataset.description,
        class_code=dataset.class_code,
        share_condition=dataset.share_condition,
        legal_basis=dataset.legal_basis,
        share_methods=dataset.share_methods,
        temporal_start=dataset.temporal_start,
        temporal_end=dataset.temporal_end,
        spatial_coverage=dataset.spatial_coverage,
        created_at=dataset.created_at,
        items=[item_read(i, dataset) for i in dataset.items],
    )


def auditable(dataset: Dataset) -> dict[str, object]:
    """What the audit log keeps of a dataset: its description, never its data."""
    fields = read(dataset).model_dump(
        mode="json",
        exclude={"id", "items", "created_at", "updated_at", "freshness", "due_at", "score"},
    )
    fields["items"] = [i.code for i in dataset.items]
    return fields


@router.get("/datasets", response_model=DatasetSearchPage)
async def search_datasets(
    session: SessionDep,
    viewer: CatalogViewer,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Words in Chinese or English, or a code."),
    ] = None,
    owner: Annotated[str | None, Query(max_length=32, description="Department code.")] = None,
    category: Category | None = None,
    base_kind: BaseKind | None = None,
    share_type: ShareType | None = None,
    sensitivity: Sensitivity | None = None,
    data_grade: DataGrade | None = None,
    update_cycle: UpdateCycle | None = None,
    freshness: Freshness | None = None,
    aggregated: bool | None = None,
    dataset_status: Annotated[DatasetStatus, Query(alias="status")] = DatasetStatus.published,
    sort: Literal["relevance", "updated"] = "relevance",
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> DatasetSearchPage:
    """Find datasets; drafts only for their own department and the platform."""
    keys = (
        {"u": CursorMoment, "c": CursorText}
        if sort == "updated"
        else {"s": CursorScore, "c": CursorText}
    )
    params = service.SearchParams(
        q=q.strip() if q and q.strip() else None,
        owner=owner,
        category=category,
        base_kind=base_kind,
        share_type=share_type,
        sensitivity=sensitivity,
        data_grade=data_grade,
        update_cycle=update_cycle,
        freshness=freshness,
        aggregated=aggregated,
        status=dataset_status,
        sort=sort,
        after=decode_cursor(cursor, keys=keys),
        limit=limit,
    )
    hits, total, facets = await service.search(session=session, viewer=viewer, params=params)
    next_cursor = None
    if len(hits) > limit:
        last = hits[limit - 1]
        position: dict[str, object] = (
            {"u": last.dataset.updated_at.isoformat(), "c": last.dataset.code}
            if sort == "updated"
            else {"s": last.score, "c": last.dataset.code}
        )
        next_cursor = encode_cursor(position)
    return DatasetSearchPage(
        items=[
            summary(h.dataset, score=h.score if params.q else None, item_count=h.item_count)
            for h in hits[:limit]
        ],
        next_cursor=next_cursor,
        total=total,
        facets={
            name: [FacetCount(value=v, count=c) for v, c in counts]
            for name, counts in facets.items()
        },
    )


@router.post("/datasets", response_model=DatasetRead, status_code=status.HTTP_201_CREATED)
async def create_dataset(
    body: DatasetCreate,
    session: SessionDep,
    _maintainer: Maintainer,
    viewer: CatalogViewer,
    actor: AuditActor,
    response: Response,
) -> DatasetRead:
    dataset = await service.create(session=session, viewer=viewer, data=body)
    result = read(dataset)
    await audit.record(
        session,
        actor,
        "dataset.created",
        AuditObject("dataset", dataset.code),
        details={"after": auditable(dataset)},
    )
    await session.commit()
    response.headers["Location"] = f"/v1/datasets/{dataset.code}"
    response.headers["ETag"] = etag_for(dataset.version)
    return result


@router.get("/datasets/{code}", response_model=DatasetRead)
async def get_dataset(
    code: str, session: SessionDep, viewer: CatalogViewer, response: Response
) -> DatasetRead:
    dataset = await service.get_visible(session=session, viewer=viewer, code=code)
    response.headers["ETag"] = etag_for(dataset.version)
    return read(dataset)


def _required_version(if_match: str | None) -> int:
    version = version_from_if_match(if_match)
    if version is None:
        raise PreconditionRequired(
            "Updating a dataset needs If-Match with the ETag from your last GET, so that "
            "nobody's change is silently overwritten."
        )
    return version


@router.patch("/datasets/{code}", response_model=DatasetRead, responses=PRECONDITIONS)
async def update_dataset(
    code: str,
    body: DatasetUpdate,
    session: SessionDep,
    _maintainer: Maintainer,
    viewer: CatalogViewer,
    actor: AuditActor,
    response: Response,
    if_match: IfMatch = None,
) -> DatasetRead:
    dataset = await service.get_editable(session=session, viewer=viewer, code=code)
    expected = _required_version(if_match)
    before = auditable(dataset)
    dataset = await service.update(
        session=session, viewer=viewer, dataset=dataset, data=body, expected_version=expected
    )
    await session.flush()
    result = read(dataset)
    await audit.record(
        session,
        actor,
        "dataset.updated",
        AuditObject("dataset", dataset.code),
        details=audit.changes(before, auditable(dataset)),
    )
    await session.commit()
    response.headers["ETag"] = etag_for(dataset.version)
    return result


@router.put("/datasets/{code}/items", response_model=DatasetRead, responses=PRECONDITIONS)
async def replace_dataset_items(
    code: str,
    body: DataItemsReplace,
    session: SessionDep,
    _maintainer: Maintainer,
    viewer: CatalogViewer,
    actor: AuditActor,
    response: Response,
    if_match: IfMatch = None,
) -> DatasetRead:
    """Replace the item list: items are matched by code, changed in place, missing ones removed."""
    dataset = await service.get_editable(session=session, viewer=viewer, code=code)
    expected = _required_version(if_match)
    before = auditable(dataset)
    dataset = await service.replace_items(
        session=session, dataset=dataset, items=body.items, expected_version=expected
    )
    await session.flush()
    result = read(dataset)
    await audit.record(
        session,
        actor,
        "dataset.items_replaced",
        AuditObject("dataset", dataset.code),
        details=audit.changes(before, auditable(dataset)),
    )
    await session.commit()
    response.headers["ETag"] = etag_for(dataset.version)
    return result


@router.get("/items", response_model=ItemSearchPage)
async def search_items(
    session: SessionDep,
    viewer: CatalogViewer,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Indicator name or code.")],
    owner: Annotated[str | None, Query(max_length=32, description="Department code.")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> ItemSearchPage:
    """Find indicators across published datasets, with the dataset and department holding each."""
    rows = await service.search_items(
        session=session,
        viewer=viewer,
        q=q,
        owner=owner,
        after=decode_cursor(cursor, keys={"s": CursorScore, "c": CursorText}),
        limit=limit,
    )
    next_cursor = None
    if len(rows) > limit:
        item, _dataset, score = rows[limit - 1]
        next_cursor = encode_cursor({"s": score, "c": item.code})
    return ItemSearchPage(
        items=[
            ItemHit(
                code=item.code,
                name=item.name,
                data_type=item.data_type,
                unit=item.unit,
                effective_sensitivity=service.effective_sensitivity(item, dataset),
                dataset_code=dataset.code,
                dataset_title=dataset.title,
                owner_department_code=dataset.owner.code,
                owner_department_name=dataset.owner.name,
                update_cycle=dataset.update_cycle,
                publication_lag_days=dataset.publication_lag_days,
                share_type=dataset.share_type,
                aggregated=dataset.aggregated,
                freshness=service.freshness_of(dataset),
                score=score,
            )
            for item, dataset, score in rows[:limit]
        ],
        next_cursor=next_cursor,
    )
