"""How a dataset reads to its callers, and what the audit log keeps of it."""

from typing import Any

from catalog.datasets import service
from catalog.datasets.models import (
    DataItem,
    Dataset,
    default_protection,
    effective_aggregation,
)
from catalog.datasets.schemas import DataItemRead, DatasetRead, DatasetSummary


def _summary_fields(dataset: Dataset, *, score: int | None, item_count: int) -> dict[str, Any]:
    return {
        "id": dataset.id,
        "code": dataset.code,
        "title": dataset.title,
        "owner_department_code": dataset.owner.code,
        "owner_department_name": dataset.owner.name,
        "category": dataset.category,
        "base_kind": dataset.base_kind,
        "share_type": dataset.share_type,
        "open_type": dataset.open_type,
        "data_grade": dataset.data_grade,
        "sensitivity": dataset.sensitivity,
        "update_cycle": dataset.update_cycle,
        "publication_lag_days": dataset.publication_lag_days,
        "aggregated": dataset.aggregated,
        "status": dataset.status,
        "last_updated_at": dataset.last_updated_at,
        "freshness": service.freshness_of(dataset),
        "due_at": dataset.due_at,
        "item_count": item_count,
        "version": dataset.version,
        "updated_at": dataset.updated_at,
        "score": score,
    }


def summary(dataset: Dataset, *, score: int | None, item_count: int) -> DatasetSummary:
    return DatasetSummary(**_summary_fields(dataset, score=score, item_count=item_count))


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
        default_protection=item.default_protection,
        personal_info=item.personal_info,
        effective_protection=default_protection(item, dataset.sensitivity),
        aggregation=item.aggregation,
        effective_aggregation=effective_aggregation(item),
    )


def read(dataset: Dataset) -> DatasetRead:
    # built in one step: the summary's fields are not validated, dumped and validated again
    return DatasetRead(
        **_summary_fields(dataset, score=None, item_count=len(dataset.items)),
        description=dataset.description,
        class_code=dataset.class_code,
        share_condition=dataset.share_condition,
        legal_basis=dataset.legal_basis,
        share_methods=dataset.share_methods,
        temporal_start=dataset.temporal_start,
        temporal_end=dataset.temporal_end,
        spatial_coverage=dataset.spatial_coverage,
        latest_period_end=dataset.latest_period_end,
        created_at=dataset.created_at,
        items=[item_read(i, dataset) for i in dataset.items],
    )


def auditable(dataset: Dataset) -> dict[str, object]:
    """What the audit log keeps of a dataset: its description, never its data."""
    fields = read(dataset).model_dump(
        mode="json",
        exclude={
            "id",
            "items",
            "created_at",
            "updated_at",
            "freshness",
            "due_at",
            "latest_period_end",
            "score",
        },
    )
    fields["items"] = [i.code for i in dataset.items]
    return fields
