"""Catalog search: datasets and indicators by words, codes and facets, on either database.

What differs by database (FTS5 on SQLite, a tsvector with GIN on PostgreSQL) stays behind
`index.matches`; everything else here is the same SQL on both.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    String,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from catalog.access import Viewer
from catalog.datasets.models import DataItem, Dataset
from catalog.departments.models import Department
from catalog.text import index
from catalog.text.tokens import parse_query
from catalog.vocab import DatasetStatus, Freshness
from core.time import utcnow


@dataclass
class SearchParams:
    q: str | None = None
    owner: str | None = None
    category: str | None = None
    base_kind: str | None = None
    share_type: str | None = None
    sensitivity: str | None = None
    data_grade: str | None = None
    update_cycle: str | None = None
    freshness: Freshness | None = None
    aggregated: bool | None = None
    status: DatasetStatus = DatasetStatus.published
    sort: str = "relevance"
    after: dict[str, Any] | None = None
    limit: int = 50
    now: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class SearchHit:
    dataset: Dataset
    score: int
    item_count: int


FACETS = (
    "owner",
    "category",
    "base_kind",
    "share_type",
    "sensitivity",
    "data_grade",
    "update_cycle",
    "freshness",
    "aggregated",
)


def _ordered(column: SQLColumnExpression[Any], dialect: str) -> SQLColumnExpression[Any]:
    """Byte order on both databases, so ties break identically."""
    return column.collate("C") if dialect == "postgresql" else column


def _freshness_expression(now: datetime) -> ColumnElement[str]:
    return case(
        (or_(Dataset.due_at.is_(None), Dataset.due_at > now), literal(Freshness.fresh.value)),
        (or_(Dataset.stale_at.is_(None), Dataset.stale_at > now), literal(Freshness.due.value)),
        else_=literal(Freshness.stale.value),
    )


def _padded(column: SQLColumnExpression[str]) -> ColumnElement[str]:
    return literal(" ").concat(column).concat(" ")


def _score(params: SearchParams) -> ColumnElement[int]:
    if not params.q:
        return literal(0)
    query = parse_query(params.q)
    parts: list[ColumnElement[int]] = [case((func.lower(Dataset.code) == query.text, 100), else_=0)]
    title = _padded(Dataset.title_tokens)
    for token in query.required:
        parts.append(case((title.contains(f" {token} ", autoescape=True), 3), else_=0))
    for word in query.words:
        parts.append(case((title.contains(f" {word} ", autoescape=True), 5), else_=0))
    for char in query.substrings:
        parts.append(case((Dataset.title.contains(char, autoescape=True), 3), else_=0))
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _filters(
    params: SearchParams, viewer: Viewer, dialect: str, *, skip: str | None = None
) -> list[ColumnElement[bool]]:
    conditions: list[Any] = [Dataset.status == params.status]
    if params.status == DatasetStatus.draft and not viewer.is_platform:
        conditions.append(Dataset.owner_department_id == viewer.department_id)
    if params.q:
        query = parse_query(params.q)
        if query.empty:
            conditions.append(false())
        if query.required:
            conditions.append(index.matches(dialect, "dataset", Dataset.id, query.required))
        for char in query.substrings:
            conditions.append(Dataset.search_tokens.contains(char, autoescape=True))
    simple = {
        "category": Dataset.category,
        "base_kind": Dataset.base_kind,
        "share_type": Dataset.share_type,
        "sensitivity": Dataset.sensitivity,
        "data_grade": Dataset.data_grade,
        "update_cycle": Dataset.update_cycle,
    }
    for name, column in simple.items():
        value = getattr(params, name)
        if value is not None and name != skip:
            conditions.append(column == value)
    if params.owner is not None and skip != "owner":
        conditions.append(Department.code == params.owner)
    if params.aggregated is not None and skip != "aggregated":
        conditions.append(Dataset.aggregated == params.aggregated)
    if params.freshness is not None and skip != "freshness":
        conditions.append(_freshness_expression(params.now) == params.freshness.value)
    return conditions


async def search_datasets(
    *, session: AsyncSession, viewer: Viewer, params: SearchParams
) -> tuple[list["SearchHit"], int, dict[str, list[tuple[str, int]]]]:
    """One page of matching datasets with their scores, the total, and facet counts.

    Two statements whatever the catalog's size: the page (ordered ids first, then the page's rows
    with their item counts), and the total with every facet counted in one pass over the matches.
    """
    dialect = session.get_bind().dialect.name
    page = await _page(session, params, viewer, dialect)
    total, facets = await _facets(session, params, viewer, dialect)
    return page, total, facets


async def _page(
    session: AsyncSession, params: SearchParams, viewer: Viewer, dialect: str
) -> list[SearchHit]:
    """The page's datasets: ordered and cut on ids alone, so only they are loaded and counted."""
    raw = _score(params)
    code = _ordered(Dataset.code, dialect)
    ids = (
        select(Dataset.id, raw.label("score"))
        .join(Department, Dataset.owner_department_id == Department.id)
        .where(and_(*_filters(params, viewer, dialect)))
    )
    if params.sort == "updated":
        ids = ids.order_by(Dataset.updated_at.desc(), code)
        if params.after:
            moment = params.after["u"]
            ids = ids.where(
                or_(
                    Dataset.updated_at < moment,
                    and_(Dataset.updated_at == moment, code > params.after["c"]),
                )
            )
    else:
        ids = ids.order_by(raw.desc(), code)
        if params.after:
            ids = ids.where(
                or_(
                    raw < params.after["s"],
                    and_(raw == params.after["s"], code > params.after["c"]),
                )
            )
    chosen = ids.limit(params.limit + 1).subquery("chosen")
    item_count = (
        select(func.count(DataItem.id))
        .where(DataItem.dataset_id == Dataset.id)
        .correlate(Dataset)
        .scalar_subquery()
    )
    query = (
        select(Dataset, chosen.c.score, item_count)
        .join(chosen, chosen.c.id == Dataset.id)
        .options(raiseload(Dataset.items))
    )
    query = (
        query.order_by(Dataset.updated_at.desc(), code)
        if params.sort == "updated"
        else query.order_by(chosen.c.score.desc(), code)
    )
    rows = (await session.execute(query)).all()
    return [SearchHit(row[0], int(row[1]), int(row[2])) for row in rows]


def _facet_columns(now: datetime) -> dict[str, ColumnElement[str]]:
    """Each facet's value as text, so all of them can be counted in one statement."""
    columns: dict[str, ColumnElement[str]] = {"owner": type_coerce(Department.code, String)}
    for name in (
        "category",
        "base_kind",
        "share_type",
        "sensitivity",
        "data_grade",
        "update_cycle",
    ):
        columns[name] = type_coerce(getattr(Dataset, name), String)
    columns["freshness"] = _freshness_expression(now)
    columns["aggregated"] = case((Dataset.aggregated, literal("true")), else_=literal("false"))
    return columns


async def _facets(
    session: AsyncSession, params: SearchParams, viewer: Viewer, dialect: str
) -> tuple[int, dict[str, list[tuple[str, int]]]]:
    """The number of matches and the counts per value of every facet over them."""
    columns = _facet_columns(params.now)
    matched = (
        select(*(column.label(name) for name, column in columns.items()))
        .select_from(Dataset)
        .join(Department, Dataset.owner_department_id == Department.id)
        .where(and_(*_filters(params, viewer, dialect)))
        .cte("matched")
    )
    parts = [
        select(literal(name).label("facet"), matched.c[name].label("value"), func.count()).group_by(
            matched.c[name]
        )
        for name in FACETS
    ]
    query = union_all(*parts)
    counts: dict[str, list[tuple[str, int]]] = {name: [] for name in FACETS}
    for facet, value, count in (await session.execute(query)).all():
        if value is not None:
            counts[facet].append((str(value), int(count)))
    total = sum(count for _value, count in counts["freshness"])
    return total, {
        name: sorted(pairs, key=lambda pair: (-pair[1], pair[0])) for name, pairs in counts.items()
    }


async def search_items(
    *,
    session: AsyncSession,
    viewer: Viewer,
    q: str,
    owner: str | None,
    after: dict[str, Any] | None,
    limit: int,
) -> list[tuple[DataItem, Dataset, int]]:
    """Indicators by name or code, each with the dataset and department that hold it."""
    dialect = session.get_bind().dialect.name
    query_terms = parse_query(q)
    conditions: list[Any] = [Dataset.status == DatasetStatus.published]
    if query_terms.empty:
        conditions.append(false())
    if query_terms.required:
        conditions.append(index.matches(dialect, "data_item", DataItem.id, query_terms.required))
    for char in query_terms.substrings:
        conditions.append(DataItem.search_tokens.contains(char, autoescape=True))
    if owner is not None:
        conditions.append(Department.code == owner)
    name_tokens = _padded(DataItem.search_tokens)
    parts: list[ColumnElement[int]] = [
        case((func.lower(DataItem.code) == query_terms.text, 100), else_=0)
    ]
    for word in query_terms.words:
        parts.append(case((name_tokens.contains(f" {word} ", autoescape=True), 5), else_=0))
    for char in query_terms.substrings:
        parts.append(case((DataItem.name.contains(char, autoescape=True), 3), else_=0))
    raw = parts[0]
    for part in parts[1:]:
        raw = raw + part
    code = _ordered(DataItem.code, dialect)
    query = (
        select(DataItem, Dataset, raw.label("score"))
        .join(Dataset, DataItem.dataset_id == Dataset.id)
        .join(Department, Dataset.owner_department_id == Department.id)
        .where(and_(*conditions))
        .order_by(raw.desc(), code)
        .limit(limit + 1)
    )
    if after:
        query = query.where(or_(raw < after["s"], and_(raw == after["s"], code > after["c"])))
    return [(row[0], row[1], int(row[2])) for row in (await session.execute(query)).all()]
