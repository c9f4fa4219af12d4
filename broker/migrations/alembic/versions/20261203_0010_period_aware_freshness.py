"""period-aware freshness: a dataset's latest period end, `latest` ordered by period

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 17:00:00.000000+00:00
"""

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from alembic import op

import core.models

# The deadlines are derived columns: they are recomputed with the rule the service applies, not a
# copy of it, so a migrated row reads exactly as one the service freshened.
from catalog.datasets.freshness import deadlines
from catalog.vocab import UpdateCycle

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

dataset = sa.table(
    "dataset",
    sa.column("id", sa.Uuid()),
    sa.column("update_cycle", sa.String()),
    sa.column("publication_lag_days", sa.Integer()),
    sa.column("last_updated_at", core.models.UTCDateTime(timezone=True)),
    sa.column("latest_period_end", sa.Date()),
    sa.column("due_at", core.models.UTCDateTime(timezone=True)),
    sa.column("stale_at", core.models.UTCDateTime(timezone=True)),
    sa.column("version", sa.Integer()),
)
release = sa.table(
    "release",
    sa.column("dataset_id", sa.Uuid()),
    sa.column("status", sa.String()),
    sa.column("period_end", sa.Date()),
)


def _refresh(row: sa.RowMapping, period_end: date | None) -> None:
    due_at, stale_at = deadlines(
        row["last_updated_at"],
        UpdateCycle(row["update_cycle"]),
        int(row["publication_lag_days"]),
        latest_period_end=period_end,
    )
    op.execute(
        dataset.update()
        .where(dataset.c.id == row["id"])
        .values(
            latest_period_end=period_end,
            due_at=due_at,
            stale_at=stale_at,
            version=dataset.c.version + 1,
        )
    )


def upgrade() -> None:
    with op.batch_alter_table("dataset", schema=None) as batch_op:
        batch_op.add_column(sa.Column("latest_period_end", sa.Date(), nullable=True))

    # `latest` is the latest period, then the latest upload.
    with op.batch_alter_table("release", schema=None) as batch_op:
        batch_op.drop_index("ix_release_dataset_status_created")
        batch_op.create_index(
            "ix_release_dataset_status_period",
            ["dataset_id", "status", "period_end", "created_at"],
            unique=False,
        )

    # Datasets with accepted releases take their latest period; freshness then follows it.
    latest = (
        sa.select(release.c.dataset_id, sa.func.max(release.c.period_end).label("period_end"))
        .where(release.c.status == "accepted")
        .group_by(release.c.dataset_id)
        .subquery()
    )
    rows = op.get_bind().execute(
        sa.select(
            dataset.c.id,
            dataset.c.update_cycle,
            dataset.c.publication_lag_days,
            dataset.c.last_updated_at,
            latest.c.period_end,
        ).join(latest, latest.c.dataset_id == dataset.c.id)
    )
    for row in rows.mappings().all():
        _refresh(row, row["period_end"])


def downgrade() -> None:
    # Back to freshness from the last update alone (the rule before this revision).
    rows = op.get_bind().execute(
        sa.select(
            dataset.c.id,
            dataset.c.update_cycle,
            dataset.c.publication_lag_days,
            dataset.c.last_updated_at,
        ).where(dataset.c.latest_period_end.is_not(None))
    )
    for row in rows.mappings().all():
        _refresh(row, None)

    with op.batch_alter_table("release", schema=None) as batch_op:
        batch_op.drop_index("ix_release_dataset_status_period")
        batch_op.create_index(
            "ix_release_dataset_status_created",
            ["dataset_id", "status", "created_at"],
            unique=False,
        )

    with op.batch_alter_table("dataset", schema=None) as batch_op:
        batch_op.drop_column("latest_period_end")
