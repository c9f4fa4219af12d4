import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from broker.scenarios.models import MemberKind, Phase
from core.time import CalendarDate, CalendarMoment

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
    ends_on: CalendarDate | None = Field(
        default=None,
        description="The planned last day of the scenario (Shanghai); contractors' windows "
        "must end by then. Today or later.",
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
    ends_on: CalendarDate | None = Field(
        default=None, description="A new planned last day; `null` removes it."
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
    ends_on: date | None
    version: int
    created_at: datetime
    updated_at: datetime


AccountName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
]


class MemberCreate(BaseModel):
    """An account taking part in the scenario: a person of a taking-part department, or a
    contractor's person (开发公司) acting for the lead within a window."""

    model_config = ConfigDict(extra="forbid")

    account: AccountName = Field(description="The account's name.", examples=["zhang.wei"])
    kind: MemberKind
    valid_from: CalendarMoment | None = Field(
        default=None, description="From when; not before the day the scenario was created."
    )
    valid_until: CalendarMoment | None = Field(
        default=None,
        description="Until when (exclusive); required for a contractor, and not after the "
        "scenario's `ends_on`.",
    )


class MemberEnd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class MemberRead(BaseModel):
    id: uuid.UUID
    scenario_code: str
    account: str
    display_name: str
    department_code: str = Field(description="The account's own department.")
    kind: MemberKind
    acting_for_department_code: str = Field(
        description="The department whose grants it works under: its own for a member, the "
        "lead's for a contractor."
    )
    valid_from: datetime | None
    valid_until: datetime | None
    active: bool = Field(description="Whether it may work under the scenario's grants now.")
    added_by: str
    created_at: datetime
    ended_at: datetime | None
    ended_by: str | None
    end_reason: str | None
