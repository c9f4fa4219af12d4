import enum
import uuid
from datetime import date, datetime

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broker.auth.models import Account
from catalog.departments.models import Department
from core.models import Base, IdMixin, TimestampMixin


class Phase(enum.StrEnum):
    preparation = "preparation"
    development = "development"
    acceptance = "acceptance"
    operation = "operation"
    retired = "retired"


class Scenario(IdMixin, TimestampMixin, Base):
    """A digital application for a governance problem (场景), led by one department."""

    __tablename__ = "scenario"

    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    lead_department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), index=True
    )
    phase: Mapped[Phase] = mapped_column(
        Enum(
            Phase,
            name="scenario_phase",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda members: [m.value for m in members],
        ),
        default=Phase.preparation,
    )
    members: Mapped[list[str]] = mapped_column(JSON, default=list)  # department codes
    # The planned end of the scenario's life; contractor windows must lie within it.
    ends_on: Mapped[date | None]
    version: Mapped[int] = mapped_column(default=1)

    lead: Mapped[Department] = relationship(lazy="joined")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class MemberKind(enum.StrEnum):
    member = "member"
    contractor = "contractor"


class ScenarioMember(IdMixin, TimestampMixin, Base):
    """An account taking part in a scenario: a department's person listed by the lead, or a
    contractor's person (开发公司) acting for the lead department within a time window."""

    __tablename__ = "scenario_member"

    scenario_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("scenario.id", ondelete="RESTRICT"), index=True
    )
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="RESTRICT"))
    kind: Mapped[MemberKind] = mapped_column(
        Enum(
            MemberKind,
            name="scenario_member_kind",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda members: [m.value for m in members],
        )
    )
    # The department a contractor acts for (the lead); a member's own department otherwise.
    acting_for_department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT")
    )
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    added_by: Mapped[str] = mapped_column(String(200))
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(200))
    end_reason: Mapped[str | None] = mapped_column(Text)

    account: Mapped[Account] = relationship(lazy="joined")
    acting_for: Mapped[Department] = relationship(lazy="joined")

    __table_args__ = (Index("ix_scenario_member_account_scenario", "account_id", "scenario_id"),)

    def active_at(self, now: datetime) -> bool:
        return (
            self.ended_at is None
            and (self.valid_from is None or self.valid_from <= now)
            and (self.valid_until is None or now < self.valid_until)
        )
