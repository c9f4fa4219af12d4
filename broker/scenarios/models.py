import enum
import uuid

from sqlalchemy import JSON, Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

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
    version: Mapped[int] = mapped_column(default=1)

    lead: Mapped[Department] = relationship(lazy="joined")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
