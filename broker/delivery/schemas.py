import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from broker.delivery.models import ReleaseStatus
from catalog.vocab import Freshness, UpdateCycle


class FailureExample(BaseModel):
    row: int = Field(description="1 is the first data row (the row after the header).")
    value: Any = None


class CheckResult(BaseModel):
    column: str | None = Field(description="Item code, or the key columns joined by commas.")
    check: str = Field(
        description="data_type, not_null, enum, pattern, minimum, maximum, unique_key, "
        "missing_column or extra_column."
    )
    failure_count: int
    examples: list[FailureExample]


class ValidationReport(BaseModel):
    valid: bool
    rows: int
    checks: list[CheckResult]


class ReleaseRead(BaseModel):
    id: uuid.UUID
    dataset_code: str
    status: ReleaseStatus
    period_start: date
    period_end: date
    source_format: str
    source_filename: str | None
    source_sha256: str
    size_bytes: int
    row_count: int
    sha256: str | None = Field(description="Digest of the stored Parquet; none when rejected.")
    report: ValidationReport
    published_by: str
    created_at: datetime


class ReleasePage(BaseModel):
    items: list[ReleaseRead]
    next_cursor: str | None = None


class StaleDataset(BaseModel):
    code: str
    title: str
    update_cycle: UpdateCycle
    publication_lag_days: int
    last_updated_at: datetime | None
    latest_period_end: date | None = Field(
        description="The latest period end an accepted release covers; freshness follows it."
    )
    due_at: datetime | None
    stale_at: datetime | None
    freshness: Freshness


class DepartmentFreshness(BaseModel):
    department_code: str
    department_name: str
    due: int
    stale: int
    datasets: list[StaleDataset]


class FreshnessReport(BaseModel):
    as_of: datetime
    departments: list[DepartmentFreshness]
