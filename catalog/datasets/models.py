import re
import uuid
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.departments.models import Department
from catalog.vocab import (
    Aggregation,
    BaseKind,
    Category,
    DataGrade,
    DatasetStatus,
    DataType,
    OpenType,
    PersonalInfo,
    Protection,
    Sensitivity,
    ShareType,
    UpdateCycle,
)
from core.models import Base, IdMixin, TimestampMixin


def vocab(kind: type, name: str) -> Enum:
    return Enum(
        kind,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda members: [m.value for m in members],
    )


class Dataset(IdMixin, TimestampMixin, Base):
    """An information resource (信息资源): what it holds, who owns it, how fresh, how sensitive."""

    __tablename__ = "dataset"

    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), index=True
    )
    category: Mapped[Category] = mapped_column(vocab(Category, "dataset_category"))
    class_code: Mapped[str | None] = mapped_column(String(64))
    base_kind: Mapped[BaseKind | None] = mapped_column(vocab(BaseKind, "dataset_base_kind"))
    share_type: Mapped[ShareType] = mapped_column(vocab(ShareType, "dataset_share_type"))
    share_condition: Mapped[str | None] = mapped_column(Text)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    open_type: Mapped[OpenType] = mapped_column(vocab(OpenType, "dataset_open_type"))
    data_grade: Mapped[DataGrade] = mapped_column(vocab(DataGrade, "dataset_data_grade"))
    sensitivity: Mapped[Sensitivity] = mapped_column(vocab(Sensitivity, "dataset_sensitivity"))
    update_cycle: Mapped[UpdateCycle] = mapped_column(vocab(UpdateCycle, "dataset_update_cycle"))
    publication_lag_days: Mapped[int] = mapped_column(default=0)
    share_methods: Mapped[list[str]] = mapped_column(JSON, default=list)
    temporal_start: Mapped[date | None]
    temporal_end: Mapped[date | None]
    spatial_coverage: Mapped[str | None] = mapped_column(String(200))
    aggregated: Mapped[bool] = mapped_column(default=False)
    status: Mapped[DatasetStatus] = mapped_column(
        vocab(DatasetStatus, "dataset_status"), default=DatasetStatus.draft
    )
    last_updated_at: Mapped[datetime | None]
    # The latest period end an accepted release covers; it only moves forward, so a release for
    # an old period never makes the dataset fresher (catalog/datasets/freshness.py).
    latest_period_end: Mapped[date | None]
    # Derived from latest_period_end (else last_updated_at), update_cycle and lag by the service
    # (never typed in), so freshness can be filtered in SQL: fresh before due_at, due until
    # stale_at, then stale.
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    stale_at: Mapped[datetime | None] = mapped_column(index=True)
    search_tokens: Mapped[str] = mapped_column(Text, default="")
    title_tokens: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(default=1)

    owner: Mapped[Department] = relationship(lazy="joined")
    items: Mapped[list["DataItem"]] = relationship(
        back_populates="dataset",
        lazy="selectin",
        cascade="all, delete-orphan",
        order_by="DataItem.position",
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (
        Index("ix_dataset_filters", "status", "category", "share_type", "sensitivity"),
        Index("ix_dataset_updated_at", "updated_at"),
    )

    @property
    def owner_code(self) -> str:
        return self.owner.code


class DataItem(IdMixin, Base):
    """A data item (信息项): one column of a dataset, with its type and constraints."""

    __tablename__ = "data_item"

    dataset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("dataset.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int]
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    data_type: Mapped[DataType] = mapped_column(vocab(DataType, "data_item_type"))
    unit: Mapped[str | None] = mapped_column(String(32))
    nullable: Mapped[bool] = mapped_column(default=True)
    is_key: Mapped[bool] = mapped_column(default=False)
    constraints: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sensitivity: Mapped[Sensitivity | None] = mapped_column(
        vocab(Sensitivity, "data_item_sensitivity")
    )
    # Unset: L4 items leave hashed, others in clear (see `effective_protection`).
    default_protection: Mapped[Protection | None] = mapped_column(
        vocab(Protection, "data_item_protection")
    )
    personal_info: Mapped[PersonalInfo | None] = mapped_column(
        vocab(PersonalInfo, "data_item_personal_info")
    )
    # How the item combines when a grant aggregates rows to a level; unset: see
    # `effective_aggregation` (rates, averages and prices are never summed).
    aggregation: Mapped[Aggregation | None] = mapped_column(
        vocab(Aggregation, "data_item_aggregation")
    )
    search_tokens: Mapped[str] = mapped_column(Text, default="")

    dataset: Mapped[Dataset] = relationship(back_populates="items", lazy="raise")


def default_protection(item: DataItem, dataset_sensitivity: Sensitivity) -> Protection:
    """How the item leaves unless an approval lifts it: as declared, else hashed when the item
    (or, lacking its own grade, its dataset) is L4, else in clear."""
    if item.default_protection is not None:
        return item.default_protection
    sensitivity = item.sensitivity or dataset_sensitivity
    return Protection.hash if sensitivity == Sensitivity.L4 else Protection.none


NUMERIC = (DataType.integer, DataType.decimal)
# Units and names that mark a rate, percentage, average, index or price: summing such values
# (two districts' growth rates, two unit prices) gives a number that means nothing.
NOT_SUMMABLE_UNIT = re.compile(r"[%％‰]|百分点|元\s*/")
NOT_SUMMABLE_NAME = re.compile(r"率|比重|占比|平均|人均|均价|指数|价格|单价|增速")


class Aggregable(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def data_type(self) -> DataType: ...
    @property
    def aggregation(self) -> Aggregation | None: ...


def never_summed(item: Aggregable) -> bool:
    """Whether the item's unit (%, ‰, 元/吨 ...) or name (…率, 比重, 平均…, 指数, 价格, 单价 ...)
    marks a rate, percentage, average, index or price, which no aggregation may sum."""
    return bool(
        (item.unit and NOT_SUMMABLE_UNIT.search(item.unit)) or NOT_SUMMABLE_NAME.search(item.name)
    )


def effective_aggregation(item: Aggregable) -> Aggregation:
    """How the item combines when a grant aggregates rows to a level (issue 15).

    As declared; else a numeric item sums, unless it is never summed (`never_summed`: a rate,
    percentage, average, index or price), which then cannot be aggregated (`none`) until its
    owner declares `mean`, `min`, `max` or `last`. A non-numeric item is `none`: it can only be
    the level itself.
    """
    if item.aggregation is not None:
        return item.aggregation
    if item.data_type not in NUMERIC or never_summed(item):
        return Aggregation.none
    return Aggregation.sum
