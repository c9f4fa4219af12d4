import uuid
from datetime import date, datetime
from typing import Annotated, Any, Self

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from catalog.vocab import (
    Aggregation,
    BaseKind,
    Category,
    DataGrade,
    DatasetStatus,
    DataType,
    Freshness,
    OpenType,
    PersonalInfo,
    Protection,
    Sensitivity,
    ShareMethod,
    ShareType,
    UpdateCycle,
)
from core.time import CalendarDate, CalendarMoment

Code = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
LongText = Annotated[str, StringConstraints(max_length=4000)]
Bound = Annotated[float, Field(allow_inf_nan=False)]


def rust_regex_error(pattern: str) -> str | None:
    """Why polars (Rust regex: no lookaround, no backreferences) cannot use a pattern, if so."""
    try:
        pl.Series([""]).str.contains(pattern)
    except pl.exceptions.ComputeError as exc:
        return str(exc).splitlines()[0][:200]
    return None


class DataItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code = Field(description="Unique across the catalog, e.g. `TJ-GYZCZ-001`.")
    name: ShortText = Field(examples=["规模以上工业总产值"])
    description: LongText | None = None
    data_type: DataType
    unit: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        default=None, examples=["亿元"]
    )
    nullable: bool = True
    is_key: bool = False
    enum: list[Annotated[str, StringConstraints(max_length=200)]] | None = Field(
        default=None, max_length=500, description="Allowed values."
    )
    pattern: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        default=None, description="Regular expression (Rust syntax: no lookaround)."
    )
    minimum: Bound | None = None
    maximum: Bound | None = None
    sensitivity: Sensitivity | None = Field(
        default=None, description="Override; never lower than the dataset's."
    )
    default_protection: Protection | None = Field(
        default=None,
        description="How the item leaves under a grant unless an approval lifts it. Unset: "
        "hash when the item (or its dataset) is L4, else in clear.",
    )
    personal_info: PersonalInfo | None = Field(
        default=None, description="The kind of personal information the item holds, if any."
    )
    aggregation: Aggregation | None = Field(
        default=None,
        description="How the item combines when a grant aggregates rows to a level. Unset: "
        "numeric items sum, except rates, percentages, averages, indices and prices (unit %, ‰, "
        "元/…; name with 率, 比重, 占比, 平均, 人均, 均价, 指数, 价格, 单价, 增速), which cannot "
        "be aggregated (`none`) and may never be declared `sum`; non-numeric items are `none`.",
    )

    @model_validator(mode="after")
    def constraints_are_coherent(self) -> Self:
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum} is greater than maximum {self.maximum}")
        if (self.minimum is not None or self.maximum is not None) and self.data_type not in (
            DataType.integer,
            DataType.decimal,
        ):
            raise ValueError("minimum/maximum apply only to integer or decimal items")
        if self.pattern is not None:
            if self.data_type != DataType.string:
                raise ValueError("a pattern applies only to string items")
            problem = rust_regex_error(self.pattern)
            if problem:
                raise ValueError(f"pattern is not a valid Rust regex (no lookaround): {problem}")
        if self.is_key and self.nullable:
            raise ValueError("a key item cannot be nullable; set nullable to false")
        return self

    def constraints(self) -> dict[str, Any]:
        found = {
            "enum": self.enum,
            "pattern": self.pattern,
            "minimum": self.minimum,
            "maximum": self.maximum,
        }
        return {k: v for k, v in found.items() if v is not None}


class DatasetFields(BaseModel):
    """The fields a steward sets; shared by create and import."""

    model_config = ConfigDict(extra="forbid")

    title: ShortText = Field(examples=["规模以上工业企业主要经济指标"])
    description: LongText = ""
    category: Category
    class_code: Annotated[str, StringConstraints(max_length=64)] | None = None
    base_kind: BaseKind | None = None
    share_type: ShareType
    share_condition: LongText | None = None
    legal_basis: LongText | None = None
    open_type: OpenType = OpenType.not_open
    data_grade: DataGrade = DataGrade.general
    sensitivity: Sensitivity = Sensitivity.L1
    update_cycle: UpdateCycle
    publication_lag_days: int = Field(default=0, ge=0, le=366)
    share_methods: list[ShareMethod] = Field(default_factory=list, max_length=5)
    temporal_start: CalendarDate | None = None
    temporal_end: CalendarDate | None = None
    spatial_coverage: Annotated[str, StringConstraints(max_length=200)] | None = None
    aggregated: bool = Field(
        default=False, description="A copy is already at the platform (已归集)."
    )


class DatasetCreate(DatasetFields):
    code: Code = Field(examples=["TJ-GYQY-M"])
    owner_department_code: Code | None = Field(
        default=None, description="Defaults to the caller's department."
    )
    status: DatasetStatus = DatasetStatus.draft
    last_updated_at: CalendarMoment | None = Field(
        default=None, description="When the data was last updated, as declared by the steward."
    )
    items: list[DataItemIn] = Field(default_factory=list, max_length=2000)


class DatasetUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: ShortText | None = None
    description: LongText | None = None
    category: Category | None = None
    class_code: Annotated[str, StringConstraints(max_length=64)] | None = None
    base_kind: BaseKind | None = None
    share_type: ShareType | None = None
    share_condition: LongText | None = None
    legal_basis: LongText | None = None
    open_type: OpenType | None = None
    data_grade: DataGrade | None = None
    sensitivity: Sensitivity | None = None
    update_cycle: UpdateCycle | None = None
    publication_lag_days: int | None = Field(default=None, ge=0, le=366)
    share_methods: list[ShareMethod] | None = Field(default=None, max_length=5)
    temporal_start: CalendarDate | None = None
    temporal_end: CalendarDate | None = None
    spatial_coverage: Annotated[str, StringConstraints(max_length=200)] | None = None
    aggregated: bool | None = None
    status: DatasetStatus | None = None
    last_updated_at: CalendarMoment | None = None


class DataItemsReplace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[DataItemIn] = Field(max_length=2000)


class DataItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    description: str | None
    data_type: DataType
    unit: str | None
    nullable: bool
    is_key: bool
    constraints: dict[str, Any]
    sensitivity: Sensitivity | None
    effective_sensitivity: Sensitivity
    default_protection: Protection | None = Field(description="As declared; null if not.")
    personal_info: PersonalInfo | None
    effective_protection: Protection = Field(
        description="How the item leaves under a grant unless an approval lifts it: as "
        "declared, else hash for L4 items, else none (in clear)."
    )
    aggregation: Aggregation | None = Field(description="As declared; null if not.")
    effective_aggregation: Aggregation = Field(
        description="How the item combines when a grant aggregates rows to a level: as "
        "declared, else `sum` for numeric items that are no rate, percentage, average, index "
        "or price, else `none` (cannot be aggregated)."
    )


class DatasetSummary(BaseModel):
    id: uuid.UUID
    code: str
    title: str
    owner_department_code: str
    owner_department_name: str
    category: Category
    base_kind: BaseKind | None
    share_type: ShareType
    open_type: OpenType
    data_grade: DataGrade
    sensitivity: Sensitivity
    update_cycle: UpdateCycle
    publication_lag_days: int
    aggregated: bool
    status: DatasetStatus
    last_updated_at: datetime | None
    freshness: Freshness
    due_at: datetime | None
    item_count: int
    version: int
    updated_at: datetime
    score: int | None = Field(default=None, description="Relevance, when searching with q.")


class DatasetRead(DatasetSummary):
    description: str
    class_code: str | None
    share_condition: str | None
    legal_basis: str | None
    share_methods: list[ShareMethod]
    temporal_start: date | None
    temporal_end: date | None
    spatial_coverage: str | None
    latest_period_end: date | None = Field(
        description="The latest period end an accepted release covers; freshness follows it "
        "(without one, the declared last update)."
    )
    created_at: datetime
    items: list[DataItemRead]


class FacetCount(BaseModel):
    value: str
    count: int


class DatasetSearchPage(BaseModel):
    items: list[DatasetSummary]
    next_cursor: str | None = None
    total: int
    facets: dict[str, list[FacetCount]]


class ItemHit(BaseModel):
    code: str
    name: str
    data_type: DataType
    unit: str | None
    effective_sensitivity: Sensitivity
    dataset_code: str
    dataset_title: str
    owner_department_code: str
    owner_department_name: str
    update_cycle: UpdateCycle
    publication_lag_days: int
    share_type: ShareType
    aggregated: bool
    freshness: Freshness
    score: int


class ItemSearchPage(BaseModel):
    items: list[ItemHit]
    next_cursor: str | None = None
