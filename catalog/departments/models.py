import enum
import uuid
from typing import Optional

from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models import Base, IdMixin, TimestampMixin


class DepartmentKind(enum.StrEnum):
    platform = "platform"
    bureau = "bureau"
    street = "street"
    enterprise = "enterprise"


class Department(IdMixin, TimestampMixin, Base):
    """A unit of the district: the platform, a bureau, a street office or an enterprise.

    Every principal acts for exactly one department; it is the security boundary.
    """

    __tablename__ = "department"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[DepartmentKind] = mapped_column(
        Enum(
            DepartmentKind,
            name="department_kind",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda kinds: [k.value for k in kinds],
        )
    )
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), index=True
    )
    version: Mapped[int] = mapped_column(default=1)

    parent: Mapped[Optional["Department"]] = relationship(
        remote_side="Department.id", lazy="joined", join_depth=1
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    @property
    def parent_code(self) -> str | None:
        return self.parent.code if self.parent is not None else None
