import uuid
from datetime import datetime

from pydantic import BaseModel

from broker.grants.models import GrantStatus
from broker.requests.schemas import Conditions


class GrantRead(BaseModel):
    id: uuid.UUID
    line_id: uuid.UUID
    request_id: uuid.UUID
    scenario_id: uuid.UUID
    grantee_department_code: str
    owner_department_code: str
    dataset_code: str
    columns: list[str]
    conditions: Conditions
    valid_from: datetime
    valid_until: datetime
    status: GrantStatus
    status_reason: str | None
    version: int


class GrantPage(BaseModel):
    items: list[GrantRead]
    next_cursor: str | None = None
