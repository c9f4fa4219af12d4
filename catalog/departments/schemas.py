import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from catalog.departments.models import DepartmentKind

DepartmentCode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
    Field(description="Stable short code, e.g. `tax` or `31010401`; letters, digits, _ . -"),
]
DepartmentName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]


class DepartmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: DepartmentCode
    name: DepartmentName = Field(examples=["区税务局"])
    kind: DepartmentKind
    parent_code: DepartmentCode | None = None


class DepartmentUpdate(BaseModel):
    """Fields to change; the code is permanent because tokens and records name it."""

    model_config = ConfigDict(extra="forbid")

    name: DepartmentName | None = None
    kind: DepartmentKind | None = None
    parent_code: DepartmentCode | None = None


class DepartmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    kind: DepartmentKind
    parent_code: str | None
    version: int
    created_at: datetime
    updated_at: datetime
