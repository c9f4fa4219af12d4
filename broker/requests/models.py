import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broker.scenarios.models import Scenario
from catalog.datasets.models import DataItem, Dataset
from catalog.departments.models import Department
from core.models import Base, IdMixin, TimestampMixin


def _enum(kind: type[enum.StrEnum], name: str) -> Enum:
    return Enum(
        kind,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
    )


class LineKind(enum.StrEnum):
    item = "item"
    dataset = "dataset"
    need = "need"


class LineState(enum.StrEnum):
    """DESIGN.md §4. Terminal: approved, auto_approved (both lead to a grant), rejected_final,
    withdrawn, not_held (a need nobody holds)."""

    draft = "draft"
    auto_approved = "auto_approved"
    pending_owner = "pending_owner"
    pending_registration = "pending_registration"
    needs_info = "needs_info"
    approved_with_conditions = "approved_with_conditions"
    approved = "approved"
    rejected = "rejected"
    escalated = "escalated"
    awaiting_countersignature = "awaiting_countersignature"
    rejected_final = "rejected_final"
    withdrawn = "withdrawn"
    not_held = "not_held"


class Request(IdMixin, TimestampMixin, Base):
    """A bundle of data lines a scenario needs, filed by one department in one go."""

    __tablename__ = "request"

    scenario_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("scenario.id", ondelete="RESTRICT"), index=True
    )
    requesting_department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), index=True
    )
    created_by: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    usage_start: Mapped[date]
    usage_end: Mapped[date]
    submitted_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)

    scenario: Mapped[Scenario] = relationship(lazy="joined")
    requesting_department: Mapped[Department] = relationship(lazy="joined")
    lines: Mapped[list["RequestLine"]] = relationship(
        back_populates="request", lazy="selectin", order_by="RequestLine.position"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class RequestLine(IdMixin, TimestampMixin, Base):
    """One thing asked for: a data item, a whole dataset, or a need not yet in the catalog."""

    __tablename__ = "request_line"

    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("request.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int]
    kind: Mapped[LineKind] = mapped_column(_enum(LineKind, "request_line_kind"))
    item_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("data_item.id", ondelete="RESTRICT"), index=True
    )
    dataset_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("dataset.id", ondelete="RESTRICT"), index=True
    )
    need: Mapped[str | None] = mapped_column(Text)
    owner_department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), index=True
    )
    state: Mapped[LineState] = mapped_column(_enum(LineState, "request_line_state"))
    route_reason: Mapped[str | None] = mapped_column(Text)
    freshness_need: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    freshness_warning: Mapped[str | None] = mapped_column(Text)
    routed_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    clock_basis: Mapped[str | None] = mapped_column(String(16))
    paused_at: Mapped[datetime | None]
    question: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    pending_approval: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    conditions: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    declaration: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    refusal_basis: Mapped[str | None] = mapped_column(Text)
    escalated_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)

    request: Mapped[Request] = relationship(back_populates="lines", lazy="joined")
    item: Mapped[DataItem | None] = relationship(lazy="joined")
    dataset: Mapped[Dataset | None] = relationship(lazy="joined")
    owner: Mapped[Department] = relationship(lazy="joined")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (Index("ix_request_line_owner_state", "owner_department_id", "state"),)


class Decision(IdMixin, Base):
    """Every step taken on a line, in order: the line's own history, kept beside the audit log."""

    __tablename__ = "decision"

    line_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("request_line.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(32))
    actor_subject: Mapped[str] = mapped_column(String(200))
    actor_department: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
