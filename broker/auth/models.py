import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.departments.models import Department
from core.models import Base, IdMixin, TimestampMixin
from core.time import utcnow


class Role(enum.StrEnum):
    requester = "requester"
    steward = "steward"
    platform_admin = "platform_admin"
    leader = "leader"
    auditor = "auditor"
    # A person of an enterprise (开发公司) working on a scenario for its lead department.
    contractor = "contractor"


class AccountKind(enum.StrEnum):
    person = "person"
    client = "client"


class Account(IdMixin, TimestampMixin, Base):
    """A person or a department system, acting for exactly one department with some roles."""

    __tablename__ = "account"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[AccountKind] = mapped_column(
        Enum(
            AccountKind,
            name="account_kind",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda kinds: [k.value for k in kinds],
        )
    )
    department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), index=True
    )
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_hash: Mapped[str | None] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(default=False)
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)

    department: Mapped[Department] = relationship(lazy="joined")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    @property
    def department_code(self) -> str:
        return self.department.code

    @property
    def has_secret(self) -> bool:
        return self.secret_hash is not None


class SigningKey(Base):
    """A key the broker signs tokens with; the newest unretired one signs, all unretired verify.

    Kept in the database so every replica and every restart agrees on the key set.
    """

    __tablename__ = "signing_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    private_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]
