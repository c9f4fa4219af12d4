import enum
import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.datasets.models import Dataset
from catalog.departments.models import Department
from core.models import Base, IdMixin, TimestampMixin


class GrantStatus(enum.StrEnum):
    active = "active"
    suspended = "suspended"
    revoked = "revoked"
    expired = "expired"  # never stored: computed from valid_until


class Grant(IdMixin, TimestampMixin, Base):
    """Who may receive what, under which conditions, until when: the result of an approval.

    At most one grant per request line (UNIQUE line_id), so a race can never yield two.
    """

    __tablename__ = "grant"

    line_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("request_line.id", ondelete="RESTRICT"), unique=True
    )
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("request.id", ondelete="RESTRICT"), index=True
    )
    scenario_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("scenario.id", ondelete="RESTRICT"), index=True
    )
    grantee_department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), index=True
    )
    owner_department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), index=True
    )
    dataset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("dataset.id", ondelete="RESTRICT"), index=True
    )
    columns: Mapped[list[str]] = mapped_column(JSON)
    # The request's purpose, which every download under the grant is recorded against.
    purpose: Mapped[str | None] = mapped_column(Text)
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    status: Mapped[GrantStatus] = mapped_column(
        Enum(
            GrantStatus,
            name="grant_status",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda members: [m.value for m in members],
        ),
        default=GrantStatus.active,
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    # The owner's clock for a first release after approval (working days), and when an overdue
    # delivery went to coordination.
    delivery_due_at: Mapped[datetime | None] = mapped_column(index=True)
    delivery_escalated_at: Mapped[datetime | None]
    issued_by: Mapped[str] = mapped_column(String(200))
    # Keys the hash masking of this grant's downloads: stable within the grant, unlinkable across.
    mask_salt: Mapped[str] = mapped_column(String(64), default=lambda: secrets.token_hex(16))
    version: Mapped[int] = mapped_column(default=1)

    dataset: Mapped[Dataset] = relationship(lazy="joined")
    grantee: Mapped[Department] = relationship(foreign_keys=[grantee_department_id], lazy="joined")
    owner: Mapped[Department] = relationship(foreign_keys=[owner_department_id], lazy="joined")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    def status_at(self, now: datetime) -> GrantStatus:
        if self.status == GrantStatus.active and now >= self.valid_until:
            return GrantStatus.expired
        return self.status
