from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response, status

from broker.audit.dependencies import AuditActor
from broker.auth.dependencies import CatalogViewer, require_roles
from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.datasets import service as datasets
from broker.datasets.representation import read, summary
from broker.kit.etags import PRECONDITIONS, IfMatch, etag_for, required_version
from broker.kit.idempotency import Idempotent
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
from catalog.datasets.schemas import (
    DataItemsReplace,
    DatasetCreate,
    DatasetRead,
    DatasetSearchPage,
    DatasetUpdate,
    FacetCount,
    ItemHit,
    ItemSearchPage,
)
from catalog.search import service as search
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

router = APIRouter(tags=["catalog"])
Maintainer = Annotated[Principal, Depends(require_roles(Role.steward, Role.platform_admin))]


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
    params = search.SearchParams(
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
    hits, total, facets = await search.search_datasets(
        session=session, viewer=viewer, params=params
    )
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
    idempotency: Idempotent,
) -> DatasetRead:
    dataset = await datasets.create(session=session, actor=actor, viewer=viewer, data=body)
    response.headers["Location"] = f"/v1/datasets/{dataset.code}"
    response.headers["ETag"] = etag_for(dataset.version)
    result = read(dataset)
    await idempotency.remember(result, status_code=201, headers=dict(response.headers))
    return result


@router.get("/datasets/{code}", response_model=DatasetRead)
async def get_dataset(
    code: str, session: SessionDep, viewer: CatalogViewer, response: Response
) -> DatasetRead:
    dataset = await service.get_visible(session=session, viewer=viewer, code=code)
    response.headers["ETag"] = etag_for(dataset.version)
    return read(dataset)


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
    dataset = await datasets.update(
        session=session,
        actor=actor,
        viewer=viewer,
        dataset=dataset,
        data=body,
        expected_version=required_version(if_match, what="a dataset"),
    )
    response.headers["ETag"] = etag_for(dataset.version)
    return read(dataset)


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
    dataset = await datasets.replace_items(
        session=session,
        actor=actor,
        dataset=dataset,
        items=body.items,
        expected_version=required_version(if_match, what="a dataset"),
    )
    response.headers["ETag"] = etag_for(dataset.version)
    return read(dataset)


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
    rows = await search.search_items(
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
