import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from broker.scenarios.models import Phase

ScenarioCode = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]


class ScenarioCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: ScenarioCode = Field(examples=["econ-indicators"])
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] = (
        Field(examples=["经济运行指标监测"])
    )
    description: Annotated[str, StringConstraints(max_length=4000)] = ""
    phase: Phase = Phase.preparation
    members: list[Annotated[str, StringConstraints(max_length=32)]] = Field(
        default_factory=list, max_length=100, description="Department codes taking part."
    )


class ScenarioUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
        | None
    ) = None
    description: Annotated[str, StringConstraints(max_length=4000)] | None = None
    phase: Phase | None = None
    members: list[Annotated[str, StringConstraints(max_length=32)]] | None = Field(
        default=None, max_length=100
    )


class ScenarioRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    description: str
    lead_department_code: str
    phase: Phase
    members: list[str]
    version: int
    created_at: datetime
    updated_at: datetime
