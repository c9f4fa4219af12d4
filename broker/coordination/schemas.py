import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class BlockingLineRead(BaseModel):
    line_id: str
    item_code: str | None = Field(description="The line's data item; none for a whole dataset.")
    department_code: str
    why: str


class Blocking(BaseModel):
    """The lines held at each step, among those the caller may see."""

    granted: list[BlockingLineRead] = Field(
        description="Lines without a grant in force (not yet approved, refused, grant ended)."
    )
    delivered: list[BlockingLineRead] = Field(
        description="Granted lines the grantee cannot download yet: no accepted release of "
        "either copy, or granted for in-platform use only."
    )
    fresh: list[BlockingLineRead] = Field(
        description="Delivered lines whose dataset is due or stale, or whose latest period "
        "falls short of the line's freshness need."
    )


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
    granted: int = Field(description="Lines (not withdrawn) with a grant in force.")
    delivered: int = Field(
        description="Granted lines whose grant downloads: an accepted release of its dataset "
        "exists (either copy) and the grant is not for in-platform use only."
    )
    fresh: int = Field(
        description="Delivered lines whose dataset is fresh and meets the line's freshness need."
    )
    delivery_overdue: int = Field(
        description="Grants whose first release is past the owner's delivery clock."
    )
    blocking: Blocking


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


class OverdueDeliveryRead(BaseModel):
    grant_id: str
    line_id: str
    department_code: str = Field(description="The owner, who owes the release.")
    department_name: str
    dataset: str
    grantee_code: str
    purpose: str | None
    delivery_due_at: datetime
    escalated_at: datetime | None = Field(
        description="When the escalation sweep sent it to coordination."
    )
    age_days: int = Field(description="Days past the delivery clock.")


class ReadinessBoard(BaseModel):
    coverage: str
    ready: int = Field(description="Lines approved or available (paper readiness).")
    total: int
    requested: int
    granted: int
    delivered: int = Field(description="Lines whose grant downloads: ready means delivered.")
    fresh: int
    delivery_overdue: int
    departments: list[DepartmentReadiness]
    blocking: Blocking = Field(description="Every department's blocking lines together.")
    outstanding: list[OutstandingLineRead]
    overdue_deliveries: list[OverdueDeliveryRead] = Field(
        description="Grants whose first release is past the delivery clock."
    )


class EscalationSweep(BaseModel):
    escalated: list[uuid.UUID] = Field(description="Lines moved to coordination.")
    deliveries_escalated: list[uuid.UUID] = Field(
        description="Grants whose overdue delivery went to coordination in this sweep."
    )


class DeliveryAwaitingRead(BaseModel):
    """A grant the caller's department owes a first release."""

    grant_id: uuid.UUID
    line_id: uuid.UUID
    dataset_code: str
    dataset_title: str
    columns: list[str]
    grantee_code: str
    grantee_name: str
    scenario_code: str
    purpose: str | None
    delivery_due_at: datetime
    overdue: bool
    escalated_at: datetime | None


class DeliveriesPage(BaseModel):
    items: list[DeliveryAwaitingRead]
    next_cursor: str | None = None
