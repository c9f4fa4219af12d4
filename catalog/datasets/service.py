"""Datasets and their items: the catalog's rules and freshness (search: catalog.search)."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.access import Viewer
from catalog.datasets.freshness import deadlines, freshness_at
from catalog.datasets.models import NUMERIC, DataItem, Dataset, never_summed
from catalog.datasets.schemas import DataItemIn, DatasetCreate, DatasetFields, DatasetUpdate
from catalog.departments import service as departments
from catalog.departments.models import Department
from catalog.text import index
from catalog.text.tokens import index_tokens
from catalog.vocab import (
    Aggregation,
    Category,
    DataGrade,
    DatasetStatus,
    Freshness,
    OpenType,
    Sensitivity,
    ShareType,
    label,
)
from core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, PreconditionFailed
from core.time import utcnow

# ---------------------------------------------------------------- rules


def check_share_rules(fields: dict[str, Any], *, prefix: str = "body") -> None:
    """The catalog's confidentiality rules (DESIGN.md §3), on the merged state of a dataset.

    conditional sharing needs a condition; none needs a legal basis and forces not_open; core
    grade forces share none; only base data has a base kind, and base data needs one.
    """
    errors: list[FieldError] = []
    share = fields["share_type"]
    if share == ShareType.conditional and not (fields.get("share_condition") or "").strip():
        errors.append(
            FieldError(
                f"{prefix}.share_condition", "Conditional sharing needs the condition (共享条件)."
            )
        )
    if share == ShareType.none:
        if not (fields.get("legal_basis") or "").strip():
            errors.append(
                FieldError(
                    f"{prefix}.legal_basis", "Not sharing needs the legal basis (不予共享依据)."
                )
            )
        if fields.get("open_type") not in (None, OpenType.not_open):
            errors.append(
                FieldError(f"{prefix}.open_type", "Data not shared cannot be open; use not_open.")
            )
    if fields.get("data_grade") == DataGrade.core and share != ShareType.none:
        errors.append(
            FieldError(
                f"{prefix}.share_type", "Core-grade data (核心数据) is never shared; use none."
            )
        )
    if fields.get("category") == Category.base and fields.get("base_kind") is None:
        errors.append(
            FieldError(f"{prefix}.base_kind", "Base data needs its kind (map, population, ...).")
        )
    if fields.get("category") != Category.base and fields.get("base_kind") is not None:
        errors.append(
            FieldError(f"{prefix}.base_kind", "Only base data has a base kind; remove it.")
        )
    start, end = fields.get("temporal_start"), fields.get("temporal_end")
    if start and end and start > end:
        errors.append(
            FieldError(f"{prefix}.temporal_end", "The coverage must end after it starts.")
        )
    if errors:
        raise InvalidInput(
            f"{len(errors)} catalog rule(s) broken; fix each one listed.", errors=errors
        )


def check_item_rules(
    items: list[DataItemIn], dataset_sensitivity: Sensitivity, *, prefix: str = "body.items"
) -> None:
    """Item codes are unique; an item may be more sensitive than its dataset, never less; only
    numeric items aggregate, and rates, percentages, averages and prices never by `sum`."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.code in seen:
            errors.append(
                FieldError(
                    f"{prefix}.{i}.code", f"'{item.code}' appears twice; item codes are unique."
                )
            )
        seen.add(item.code)
        if item.sensitivity is not None and item.sensitivity.level < dataset_sensitivity.level:
            errors.append(
                FieldError(
                    f"{prefix}.{i}.sensitivity",
                    f"{item.sensitivity.value} is below the dataset's {dataset_sensitivity.value}; "
                    "an item may only raise it.",
                )
            )
        errors.extend(_aggregation_errors(item, f"{prefix}.{i}.aggregation"))
    if errors:
        raise InvalidInput(
            f"{len(errors)} item rule(s) broken; fix each one listed.", errors=errors
        )


def _aggregation_errors(item: DataItemIn, location: str) -> list[FieldError]:
    declared = item.aggregation
    if declared is None or declared == Aggregation.none:
        return []
    if item.data_type not in NUMERIC:
        return [
            FieldError(
                location,
                f"'{item.code}' is {item.data_type.value}: only integer or decimal items "
                "aggregate; leave it unset or declare none.",
            )
        ]
    if declared == Aggregation.sum and never_summed(item):
        return [
            FieldError(
                location,
                f"'{item.code}' ({item.name}{f', {item.unit}' if item.unit else ''}) is a rate, "
                "percentage, average, index or price: it is never summed; declare mean, min, "
                "max, last or none.",
            )
        ]
    return []


# ---------------------------------------------------------------- reading


def effective_sensitivity(item: DataItem, dataset: Dataset) -> Sensitivity:
    return item.sensitivity or dataset.sensitivity


async def find_by_code(*, session: AsyncSession, code: str) -> Dataset | None:
    return await session.scalar(select(Dataset).where(Dataset.code == code))


async def get_visible(*, session: AsyncSession, viewer: Viewer, code: str) -> Dataset:
    """A dataset the viewer may see; another department's draft is indistinguishable from none."""
    dataset = await find_by_code(session=session, code=code)
    if dataset is None or (
        dataset.status == DatasetStatus.draft
        and not viewer.may_see_drafts_of(dataset.owner_department_id)
    ):
        raise NotFound(f"No dataset has the code '{code}'.")
    return dataset


async def get_editable(*, session: AsyncSession, viewer: Viewer, code: str) -> Dataset:
    dataset = await get_visible(session=session, viewer=viewer, code=code)
    if not viewer.may_edit(dataset.owner_department_id):
        raise Forbidden(
            f"Dataset '{code}' belongs to '{dataset.owner_code}'; only its stewards or a "
            "platform admin may change it."
        )
    return dataset


def freshness_of(dataset: Dataset, now: datetime | None = None) -> Freshness:
    return freshness_at(now or utcnow(), dataset.due_at, dataset.stale_at)


# ---------------------------------------------------------------- writing


def record_update(dataset: Dataset, *, at: datetime, period_end: date) -> None:
    """New data arrived for a period ending on `period_end`: last-updated moves, and the latest
    period covered moves forward only, so a release for an old period never makes the dataset
    fresher; when it is next due and stale follow (catalog/datasets/freshness.py)."""
    dataset.last_updated_at = at
    if dataset.latest_period_end is None or period_end > dataset.latest_period_end:
        dataset.latest_period_end = period_end
    _refresh_deadlines(dataset)


def _refresh_deadlines(dataset: Dataset) -> None:
    dataset.due_at, dataset.stale_at = deadlines(
        dataset.last_updated_at,
        dataset.update_cycle,
        dataset.publication_lag_days,
        latest_period_end=dataset.latest_period_end,
    )


def _refresh_derived(dataset: Dataset) -> None:
    _refresh_deadlines(dataset)
    labels = [label(dataset.category)] + ([label(dataset.base_kind)] if dataset.base_kind else [])
    dataset.title_tokens = " ".join(index_tokens(dataset.title, dataset.code))
    dataset.search_tokens = " ".join(
        index_tokens(
            dataset.code,
            dataset.title,
            dataset.description,
            dataset.class_code,
            dataset.owner.name,
            dataset.owner.code,
            *labels,
            *(f"{i.code} {i.name} {i.unit or ''}" for i in dataset.items),
        )
    )
    for item in dataset.items:
        item.search_tokens = " ".join(index_tokens(item.code, item.name, item.description))


async def _reindex(session: AsyncSession, dataset: Dataset) -> None:
    await session.flush()
    await index.reindex(session, "dataset", [(dataset.id, dataset.search_tokens)])
    await index.reindex(session, "data_item", [(i.id, i.search_tokens) for i in dataset.items])


async def _owner_for(
    *, session: AsyncSession, viewer: Viewer, owner_code: str | None, location: str
) -> Department:
    if owner_code is None:
        return await departments.get_by_id(session=session, department_id=viewer.department_id)
    owner = await departments.find_by_code(session=session, code=owner_code)
    if owner is None:
        raise InvalidInput(
            f"The department '{owner_code}' does not exist.",
            errors=[FieldError(location, "Use the code of a registered department.")],
        )
    return owner


async def _refuse_taken_item_codes(
    session: AsyncSession, items: list[DataItemIn], dataset_id: uuid.UUID | None
) -> None:
    codes = [i.code for i in items]
    if not codes:
        return
    query = select(DataItem.code, Dataset.code).join(Dataset).where(DataItem.code.in_(codes))
    if dataset_id is not None:
        query = query.where(DataItem.dataset_id != dataset_id)
    taken = (await session.execute(query)).all()
    if taken:
        raise Conflict(
            "Item codes are unique across the catalog; these are taken: "
            + ", ".join(f"'{item}' (in {ds})" for item, ds in taken),
            errors=[FieldError("body.items", "Choose other item codes.", "duplicate")],
        )


def _new_item(item: DataItemIn, position: int) -> DataItem:
    return DataItem(
        position=position,
        code=item.code,
        name=item.name,
        description=item.description,
        data_type=item.data_type,
        unit=item.unit,
        nullable=item.nullable,
        is_key=item.is_key,
        constraints=item.constraints(),
        sensitivity=item.sensitivity,
        default_protection=item.default_protection,
        personal_info=item.personal_info,
        aggregation=item.aggregation,
    )


async def create(*, session: AsyncSession, viewer: Viewer, data: DatasetCreate) -> Dataset:
    """Register a dataset and its items for a department the viewer may maintain."""
    owner = await _owner_for(
        session=session,
        viewer=viewer,
        owner_code=data.owner_department_code,
        location="body.owner_department_code",
    )
    if not viewer.may_edit(owner.id):
        raise Forbidden(
            f"Stewards register datasets for their own department only, not for '{owner.code}'."
        )
    fields = data.model_dump(exclude={"items", "owner_department_code", "code"})
    check_share_rules(fields)
    check_item_rules(data.items, data.sensitivity)
    if await find_by_code(session=session, code=data.code) is not None:
        raise Conflict(
            f"A dataset with the code '{data.code}' already exists.",
            errors=[FieldError("body.code", "Choose another code.", "duplicate")],
        )
    await _refuse_taken_item_codes(session, data.items, None)
    dataset = Dataset(
        code=data.code,
        owner=owner,
        items=[_new_item(item, i) for i, item in enumerate(data.items)],
        **{k: v for k, v in fields.items() if k != "share_methods"},
        share_methods=[m.value for m in data.share_methods],
    )
    _refresh_derived(dataset)
    session.add(dataset)
    await _reindex(session, dataset)
    return dataset


def _check_version(dataset: Dataset, expected_version: int) -> None:
    if expected_version != dataset.version:
        raise PreconditionFailed(
            f"Dataset '{dataset.code}' is at version {dataset.version}, not {expected_version}; "
            "fetch it again and reapply your change."
        )


async def update(
    *,
    session: AsyncSession,
    viewer: Viewer,
    dataset: Dataset,
    data: DatasetUpdate,
    expected_version: int,
) -> Dataset:
    """Change a dataset's description; the rules are checked on the result, not the patch."""
    _check_version(dataset, expected_version)
    changes = data.model_dump(exclude_unset=True)
    merged = {name: getattr(dataset, name) for name in DatasetFields.model_fields} | changes
    check_share_rules(merged)
    if "sensitivity" in changes:
        check_item_rules(
            [_as_input(i) for i in dataset.items], data.sensitivity or dataset.sensitivity
        )
    for name, value in changes.items():
        if name == "share_methods":
            value = [m.value for m in value or []]
        setattr(dataset, name, value)
    _refresh_derived(dataset)
    await _reindex(session, dataset)
    return dataset


def _as_input(item: DataItem) -> DataItemIn:
    return DataItemIn.model_validate(
        {
            "code": item.code,
            "name": item.name,
            "description": item.description,
            "data_type": item.data_type,
            "unit": item.unit,
            "nullable": item.nullable,
            "is_key": item.is_key,
            "sensitivity": item.sensitivity,
            "default_protection": item.default_protection,
            "personal_info": item.personal_info,
            "aggregation": item.aggregation,
            **item.constraints,
        }
    )


async def replace_items(
    *,
    session: AsyncSession,
    dataset: Dataset,
    items: list[DataItemIn],
    expected_version: int,
) -> Dataset:
    """Make the dataset's items exactly `items`: matched by code and updated in place."""
    _check_version(dataset, expected_version)
    check_item_rules(items, dataset.sensitivity)
    await _refuse_taken_item_codes(session, items, dataset.id)
    wanted = {item.code for item in items}
    removed = [i for i in dataset.items if i.code not in wanted]
    for gone in removed:
        dataset.items.remove(gone)
    await session.flush()
    await index.unindex(session, "data_item", [i.id for i in removed])
    existing = {i.code: i for i in dataset.items}
    for position, item in enumerate(items):
        current = existing.get(item.code)
        if current is None:
            dataset.items.append(_new_item(item, position))
            continue
        fresh = _new_item(item, position)
        for name in (
            "position",
            "name",
            "description",
            "data_type",
            "unit",
            "nullable",
            "is_key",
            "constraints",
            "sensitivity",
            "default_protection",
            "personal_info",
            "aggregation",
        ):
            setattr(current, name, getattr(fresh, name))
    dataset.items.sort(key=lambda i: i.position)
    dataset.updated_at = utcnow()
    _refresh_derived(dataset)
    await _reindex(session, dataset)
    return dataset


# ---------------------------------------------------------------- freshness


async def falling_behind(
    *, session: AsyncSession, now: datetime, department_code: str | None = None
) -> list[Dataset]:
    """Published datasets due for an update or stale, by department, most urgent first."""
    query = (
        select(Dataset)
        .join(Department, Dataset.owner_department_id == Department.id)
        .where(Dataset.status == DatasetStatus.published, Dataset.due_at <= now)
        .order_by(Department.code, Dataset.stale_at, Dataset.code)
    )
    if department_code is not None:
        query = query.where(Department.code == department_code)
    return list((await session.scalars(query)).unique().all())
