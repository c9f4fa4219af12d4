"""A grant's terms and how a grant reads; requests imports the terms from here."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from broker.grants.models import GrantStatus
from core.time import CalendarDate

Text4000 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class RowFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: Code
    op: Literal["eq", "ne", "in", "lt", "le", "gt", "ge"]
    value: Any


MAX_ROW_FILTERS = 20


class Conditions(BaseModel):
    """Structured conditions of an approval; everything the delivery side can enforce."""

    model_config = ConfigDict(extra="forbid")

    columns: list[Code] | None = Field(
        default=None, min_length=1, description="Subset of item codes granted."
    )
    masking: dict[Code, Literal["hash", "partial", "null"]] = Field(default_factory=dict)
    lift_masking: dict[Code, Text4000] = Field(
        default_factory=dict,
        description="Columns to deliver without the masking their data item declares by "
        "default, each with the reason. On L4 items both four-eyes approvers must lift it.",
    )
    aggregation_level: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None,
        examples=["RK-JD", "district"],
        description="An item code: downloads combine each granted numeric column per value of "
        "that column by the item's effective aggregation (sum, mean, min, max, last), plus a "
        "row_count; refused at approval if a granted numeric column's aggregation is none. Any "
        "other word names the granularity the owner's releases already have (delivered as is).",
    )
    row_filter: list[RowFilter] = Field(default_factory=list, max_length=MAX_ROW_FILTERS)
    purpose: Annotated[str, StringConstraints(max_length=1000)] | None = None
    valid_until: CalendarDate | None = None
    no_reshare: bool = False
    in_platform_only: bool = False


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text4000


class GrantRead(BaseModel):
    id: uuid.UUID
    line_id: uuid.UUID
    request_id: uuid.UUID
    scenario_id: uuid.UUID
    grantee_department_code: str
    owner_department_code: str
    dataset_code: str
    columns: list[str]
    purpose: str | None = Field(description="The request's purpose: downloads are bound to it.")
    conditions: Conditions
    valid_from: datetime
    valid_until: datetime
    status: GrantStatus
    status_reason: str | None
    version: int


class GrantPage(BaseModel):
    items: list[GrantRead]
    next_cursor: str | None = None
