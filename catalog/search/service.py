"""Catalog search: datasets and indicators by words, codes and facets, on either database.

What differs by database (FTS5 on SQLite, a tsvector with GIN on PostgreSQL) stays behind
`index.matches`; everything else here is the same SQL on both.
"""

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from catalog.access import Viewer
from catalog.datasets.models import DataItem, Dataset
from catalog.departments.models import Department
from catalog.text import index
from catalog.text.tokens import parse_query
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


def _status(dialect: str, *, indexed: bool) -> ColumnElement[DatasetStatus]:
    """The status column, hidden from SQLite's planner when another index should lead.

    Without statistics (the product never runs ANALYZE) SQLite prefers the status index
    whatever else the query holds: it reads every published dataset to test it against the
    words' matches, or to sort them all for a page of 50 (35-60 ms at 20,000 datasets where
    starting from the matches, or walking the code or update-time index, takes under 5).
    `+status` is SQLite's documented way to keep a term from choosing an index; PostgreSQL
    plans from statistics and gets the plain column.
    """
    if dialect != "sqlite" or indexed:
        return Dataset.status.expression
    return UnaryExpression(
        Dataset.status.expression, operator=operators.custom_op("+"), type_=Dataset.status.type
    )


def _filters(
    params: SearchParams, viewer: Viewer, dialect: str, *, page: bool
) -> list[ColumnElement[bool]]:
    """The conditions a match meets; for a `page`, SQLite is steered to the order's index."""
    query = parse_query(params.q) if params.q else None
    led_by_words = query is not None and bool(query.required)
    status = _status(dialect, indexed=not (page or led_by_words))
    conditions: list[Any] = [status == params.status]
    if params.status == DatasetStatus.draft and not viewer.is_platform:
        conditions.append(Dataset.owner_department_id == viewer.department_id)
    if query is not None:
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
        if value is not None:
            conditions.append(column == value)
    if params.owner is not None:
        conditions.append(Department.code == params.owner)
    if params.aggregated is not None:
        conditions.append(Dataset.aggregated == params.aggregated)
    if params.freshness is not None:
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
        .where(and_(*_filters(params, viewer, dialect, page=True)))
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
        # Without words every score is 0: ordering by code alone lets an index give the order.
        ids = ids.order_by(raw.desc(), code) if params.q else ids.order_by(code)
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
        if params.q
        else query.order_by(code)
    )
    rows = (await session.execute(query)).all()
    return [SearchHit(row[0], int(row[1]), int(row[2])) for row in rows]


# The facets with a fixed vocabulary, each value counted by a column of one aggregate; owners
# (departments) are the groups of that aggregate.
VOCABULARY_FACETS: dict[str, type[enum.StrEnum]] = {
    "category": Category,
    "base_kind": BaseKind,
    "share_type": ShareType,
    "sensitivity": Sensitivity,
    "data_grade": DataGrade,
    "update_cycle": UpdateCycle,
    "freshness": Freshness,
}


async def _facets(
    session: AsyncSession, params: SearchParams, viewer: Viewer, dialect: str
) -> tuple[int, dict[str, list[tuple[str, int]]]]:
    """The number of matches and the counts per value of every facet, in one pass over them.

    One GROUP BY owner with a conditional count per vocabulary value reads each match once; a
    GROUP BY per facet read them nine times.
    """
    columns: dict[str, ColumnElement[Any]] = {
        name: getattr(Dataset, name) for name in VOCABULARY_FACETS if name != "freshness"
    }
    columns["freshness"] = _freshness_expression(params.now)
    cells: list[tuple[str, str]] = [
        (name, member.value) for name, kind in VOCABULARY_FACETS.items() for member in kind
    ] + [("aggregated", "true"), ("aggregated", "false")]
    counters: list[Any] = [
        func.sum(case((columns[name] == value, 1), else_=0))
        for name, value in cells
        if name != "aggregated"
    ] + [
        func.sum(case((Dataset.aggregated.is_(True), 1), else_=0)),
        func.sum(case((Dataset.aggregated.is_(False), 1), else_=0)),
    ]
    query = (
        select(Department.code, func.count(), *counters)
        .select_from(Dataset)
        .join(Department, Dataset.owner_department_id == Department.id)
        .where(and_(*_filters(params, viewer, dialect, page=False)))
        .group_by(Department.code)
    )
    counts: dict[str, dict[str, int]] = {name: {} for name in FACETS}
    total = 0
    for owner, matched, *tallies in (await session.execute(query)).all():
        total += int(matched)
        counts["owner"][owner] = int(matched)
        for (name, value), tally in zip(cells, tallies, strict=True):
            if tally:
                counts[name][value] = counts[name].get(value, 0) + int(tally)
    return total, {
        name: sorted(pairs.items(), key=lambda pair: (-pair[1], pair[0]))
        for name, pairs in counts.items()
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
    status = _status(dialect, indexed=not query_terms.required)
    conditions: list[Any] = [status == DatasetStatus.published]
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
    ids = (
        select(DataItem.id, raw.label("score"))
        .join(Dataset, DataItem.dataset_id == Dataset.id)
        .join(Department, Dataset.owner_department_id == Department.id)
        .where(and_(*conditions))
        .order_by(raw.desc(), code)
        .limit(limit + 1)
    )
    if after:
        ids = ids.where(or_(raw < after["s"], and_(raw == after["s"], code > after["c"])))
    # Ordered and cut on ids and scores alone: only the page's rows are loaded.
    chosen = ids.subquery("chosen")
    query = (
        select(DataItem, Dataset, chosen.c.score)
        .join(chosen, chosen.c.id == DataItem.id)
        .join(Dataset, DataItem.dataset_id == Dataset.id)
        .options(raiseload(Dataset.items))
        .order_by(chosen.c.score.desc(), code)
    )
    return [(row[0], row[1], int(row[2])) for row in (await session.execute(query)).all()]
