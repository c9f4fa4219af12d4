import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class DepartmentReadiness(BaseModel):
    department_code: str
    department_name: str
    requested: int
    available: int
    approved: int
    pending: int
    overdue: int
    unregistered: int
    escalated: int
    rejected: int
    withdrawn: int


class OutstandingLineRead(BaseModel):
    line_id: str
    request_id: str
    department_code: str
    department_name: str
    item: str
    state: str
    routed_at: datetime | None
    due_at: datetime | None
    overdue: bool
    age_days: int
    reason: str | None
    refusal_basis: str | None = Field(
        default=None, description="The legal basis of the owner's refusal, beside its reason."
    )


class ReadinessBoard(BaseModel):
    coverage: str
    ready: int
    total: int
    departments: list[DepartmentReadiness]
    outstanding: list[OutstandingLineRead]


class EscalationSweep(BaseModel):
    escalated: list[uuid.UUID]
