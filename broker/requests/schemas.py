import uuid
from datetime import date, datetime
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from broker.grants.schemas import Code, Conditions, Text4000
from broker.requests.models import LineKind, LineState
from catalog.vocab import Sensitivity, UpdateCycle
from core.time import CalendarDate

Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class FreshnessNeed(BaseModel):
    """How fresh the line must be: at least this cycle, out within N days of period end."""

    model_config = ConfigDict(extra="forbid")

    update_cycle: UpdateCycle
    within_days: int = Field(ge=0, le=366)


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_code: Code | None = None
    dataset_code: Code | None = None
    need: Text4000 | None = Field(default=None, description="Data not in the catalog yet.")
    believed_department_code: Code | None = Field(
        default=None, description="For a need: the department believed to hold it."
    )
    freshness_need: FreshnessNeed | None = None

    @model_validator(mode="after")
    def names_exactly_one_thing(self) -> Self:
        given = [x for x in (self.item_code, self.dataset_code, self.need) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of item_code, dataset_code or need")
        if self.need is not None and self.believed_department_code is None:
            raise ValueError("a need needs believed_department_code")
        return self


class RequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario_code: Code
    title: Text200 = Field(examples=["经济运行指标数据需求"])
    purpose: Text4000 = Field(examples=["经济运行监测分析与月度研判"])
    legal_basis: Text4000 | None = None
    usage_start: CalendarDate
    usage_end: CalendarDate
    lines: list[LineIn] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def usage_period_is_coherent(self) -> Self:
        if self.usage_end < self.usage_start:
            raise ValueError("usage_end is before usage_start")
        return self


class LinesAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[LineIn] = Field(default_factory=list, max_length=1000)
    item_codes: list[Code] = Field(
        default_factory=list, max_length=1000, description="Paste many item codes at once."
    )


class LinesAdded(BaseModel):
    added: int
    unknown_codes: list[str] = Field(description="Codes matching no published item; not added.")


class Declaration(BaseModel):
    """时效性和保密性说明: the owner's statement of timeliness and confidentiality for the item."""

    model_config = ConfigDict(extra="forbid")

    update_cycle: UpdateCycle
    publication_lag_days: int = Field(ge=0, le=366)
    sensitivity: Sensitivity
    note: Annotated[str, StringConstraints(max_length=1000)] | None = None


OwnerDecisionKind = Literal[
    "approve", "approve_with_conditions", "needs_info", "reject", "not_held", "register"
]


class OwnerDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: OwnerDecisionKind
    declaration: Declaration | None = None
    conditions: Conditions | None = None
    question: Text4000 | None = None
    reason: Text4000 | None = None
    legal_basis: Text4000 | None = Field(
        default=None,
        validate_default=True,
        description="For reject: the law or rule the refusal rests on (政务数据共享条例), "
        "shown to the requester and the coordination agenda beside the reason.",
    )
    reroute_to: Code | None = Field(default=None, description="For not_held: who holds it.")
    item_code: Code | None = Field(default=None, description="For register: the new item.")

    @field_validator("legal_basis")
    @classmethod
    def refusals_name_their_basis(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("decision") == "reject":
            raise ValueError("a refusal names its legal basis")
        return value

    @model_validator(mode="after")
    def carries_what_the_decision_needs(self) -> Self:
        needs: dict[str, tuple[str, ...]] = {
            "approve": ("declaration",),
            "approve_with_conditions": ("declaration", "conditions"),
            "needs_info": ("question",),
            "reject": ("declaration", "reason"),
            "not_held": ("reroute_to",),
            "register": ("item_code",),
        }
        missing = [f for f in needs[self.decision] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"{self.decision} needs {', '.join(missing)}")
        return self


class BatchDecision(OwnerDecision):
    line_ids: list[uuid.UUID] = Field(min_length=1, max_length=500)


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: Text4000


class LeaderDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "approve_with_conditions", "rejected_final"]
    note: Text4000
    conditions: Conditions | None = None
    legal_basis: Text4000 | None = Field(
        default=None,
        description="The basis for granting what the owner refused; required to override a "
        "refusal.",
    )
    meeting_reference: Text200 | None = Field(
        default=None,
        description="The coordination meeting that decided it; required to override a refusal.",
        examples=["2026年第12次调度会"],
    )

    @model_validator(mode="after")
    def conditions_when_needed(self) -> Self:
        if self.decision == "approve_with_conditions" and self.conditions is None:
            raise ValueError("approve_with_conditions needs conditions")
        return self


class Countersignature(BaseModel):
    """A platform steward's word on a leader's approval of L4 or important-grade data."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["countersign", "refuse"] = Field(
        description="countersign: the grant is issued on the leader's terms; refuse: the line is "
        "refused for good."
    )
    note: Text4000 | None = Field(
        default=None,
        validate_default=True,
        description="Why; required to refuse, and kept as the line's reason.",
    )

    @field_validator("note")
    @classmethod
    def refusals_say_why(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("decision") == "refuse":
            raise ValueError("a refused countersignature says why")
        return value


class ProposedTerms(BaseModel):
    """A four-eyes line's pending approval: what the next steward is asked to agree to."""

    by: str = Field(description="The steward who proposed these terms.")
    decision: Literal["approve", "approve_with_conditions"]
    conditions: Conditions
    proposed_at: datetime | None
    differences: list[str] = Field(
        default_factory=list,
        description="Where these terms loosen the proposal they replaced; empty for a first "
        "approval. Nothing is granted until another steward agrees.",
    )
    supersedes_by: str | None = Field(
        default=None, description="Whose stricter proposal these terms replaced, if any."
    )


class MaskedColumn(BaseModel):
    """A column of the line that will arrive masked, or whose catalog default is lifted."""

    model_config = ConfigDict(from_attributes=True)

    column: str
    method: Literal["hash", "partial", "null"] | None = Field(
        description="How it arrives; null: in clear, its default masking lifted."
    )
    source: Literal["default", "conditions"] = Field(
        description="default: the catalog's default masking for the item, which nobody had to "
        "ask for; conditions: the approval's terms (a method at least as strong, or a lift)."
    )
    default: Literal["hash", "partial", "null"] | None = Field(
        description="The item's default masking in the catalog, if any."
    )
    lift_reason: str | None = Field(
        default=None, description="Why the approval lifted the default, when it did."
    )


class LineRead(BaseModel):
    id: uuid.UUID
    request_id: uuid.UUID
    scenario_code: str = Field(description="The scenario the data is asked for.")
    requesting_department_code: str
    purpose: str = Field(
        description="The request's purpose, which the grant is bound to and every download "
        "is recorded against (shown to the owner deciding the line)."
    )
    position: int
    kind: LineKind
    item_code: str | None
    item_name: str | None
    dataset_code: str | None
    dataset_title: str | None
    need: str | None
    owner_department_code: str
    owner_department_name: str
    state: LineState
    route_reason: str | None
    freshness_need: FreshnessNeed | None
    freshness_warning: str | None
    routed_at: datetime | None
    due_at: datetime | None
    clock_basis: str | None
    overdue: bool
    question: str | None
    answer: str | None
    awaiting_second_approval: bool
    proposed_terms: ProposedTerms | None = None
    conditions: Conditions | None
    masked_columns: list[MaskedColumn] = Field(
        default_factory=list,
        description="What will arrive masked under the line's grant: the catalog's defaults and "
        "the terms in force or proposed (the pending four-eyes proposal while one waits).",
    )
    declaration: Declaration | None
    reason: str | None
    refusal_basis: str | None = Field(
        default=None, description="The legal basis a refusal rests on, beside its reason."
    )
    grant_id: uuid.UUID | None = None
    version: int


class RequestRead(BaseModel):
    id: uuid.UUID
    scenario_code: str
    requesting_department_code: str
    title: str
    purpose: str
    legal_basis: str | None
    usage_start: date
    usage_end: date
    status: Literal["draft", "in_progress", "completed", "withdrawn"]
    submitted_at: datetime | None
    created_by: str
    created_at: datetime
    lines: list[LineRead]


class InboxPage(BaseModel):
    items: list[LineRead]
    next_cursor: str | None = None


class DecisionsApplied(BaseModel):
    lines: list[LineRead]
