import enum
import uuid
from datetime import date
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.datasets.models import Dataset
from core.models import Base, IdMixin, TimestampMixin


class Copy(enum.StrEnum):
    """Whose copy a release is: the owner's own, or the platform's aggregated copy (已归集)."""

    owner = "owner"
    platform = "platform"


class ReleaseStatus(enum.StrEnum):
    accepted = "accepted"
    rejected = "rejected"


class Release(IdMixin, TimestampMixin, Base):
    """One delivered version of a dataset's data (DESIGN §3), with its validation report.

    Only accepted releases have a stored file (`storage_key`, content-addressed by `sha256`);
    a rejected one keeps its report and the upload's digest so the owner can see what failed.
    """

    __tablename__ = "release"

    dataset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dataset.id", ondelete="RESTRICT"))
    status: Mapped[ReleaseStatus] = mapped_column(
        Enum(
            ReleaseStatus,
            name="release_status",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda members: [m.value for m in members],
        )
    )
    period_start: Mapped[date]
    period_end: Mapped[date]
    source_format: Mapped[str] = mapped_column(String(16))
    source_filename: Mapped[str | None] = mapped_column(String(300))
    source_sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    row_count: Mapped[int]
    sha256: Mapped[str | None] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(String(300))
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_by: Mapped[str] = mapped_column(String(200))
    copy: Mapped[Copy] = mapped_column(
        Enum(
            Copy,
            name="release_copy",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda members: [m.value for m in members],
        ),
        default=Copy.owner,
        server_default=Copy.owner.value,
    )
    # A declared correction replaces the accepted release of the same copy and period.
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("release.id", ondelete="RESTRICT")
    )

    dataset: Mapped[Dataset] = relationship(lazy="joined")

    __table_args__ = (
        # `latest`: the latest period, then the latest upload (delivery.service.latest_release).
        Index(
            "ix_release_dataset_status_period",
            "dataset_id",
            "status",
            "period_end",
            "created_at",
        ),
    )


class Receipt(IdMixin, TimestampMixin, Base):
    """The signed record a download leaves with (a compact JWS), kept for the grantee and owner."""

    __tablename__ = "receipt"

    grant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("grant.id", ondelete="RESTRICT"), index=True
    )
    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("release.id", ondelete="RESTRICT"))
    account_subject: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    jws: Mapped[str] = mapped_column(Text)
