"""delivery after approval: item aggregation, platform copies and corrections of releases, the
delivery clock of grants

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 17:15:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("data_item", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "aggregation",
                sa.Enum(
                    "sum",
                    "mean",
                    "min",
                    "max",
                    "last",
                    "none",
                    name="data_item_aggregation",
                    native_enum=False,
                    create_constraint=True,
                    length=24,
                ),
                nullable=True,
            )
        )

    with op.batch_alter_table("grant", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("delivery_due_at", core.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "delivery_escalated_at", core.models.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.create_index(
            batch_op.f("ix_grant_delivery_due_at"), ["delivery_due_at"], unique=False
        )

    with op.batch_alter_table("release", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "copy",
                sa.Enum(
                    "owner",
                    "platform",
                    name="release_copy",
                    native_enum=False,
                    create_constraint=True,
                    length=16,
                ),
                server_default="owner",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("supersedes_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_release_supersedes_id_release"),
            "release",
            ["supersedes_id"],
            ["id"],
            ondelete="RESTRICT",
        )


def downgrade() -> None:
    # SQLite's table copy would keep the checks of dropped columns: drop them first.
    with op.batch_alter_table("release", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_release_supersedes_id_release"), type_="foreignkey")
        batch_op.drop_constraint(op.f("ck_release_release_copy"), type_="check")
        batch_op.drop_column("supersedes_id")
        batch_op.drop_column("copy")

    with op.batch_alter_table("grant", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grant_delivery_due_at"))
        batch_op.drop_column("delivery_escalated_at")
        batch_op.drop_column("delivery_due_at")

    with op.batch_alter_table("data_item", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_data_item_data_item_aggregation"), type_="check")
        batch_op.drop_column("aggregation")
