"""create dataset and data item

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 09:53:41.554031+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Search indexes over the Python-made tokens (catalog/search): FTS5 twins on SQLite, generated
# tsvector columns with GIN on PostgreSQL. Tokens are pre-segmented, so no stemming or parsing.
FTS5 = (
    "CREATE VIRTUAL TABLE {table}_fts USING fts5(ref UNINDEXED, tokens, "
    "tokenize = \"unicode61 remove_diacritics 0 tokenchars '-_.'\")"
)
TSVECTOR = (
    "ALTER TABLE {table} ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
    "(array_to_tsvector(string_to_array(search_tokens, ' '))) STORED"
)
GIN = "CREATE INDEX ix_{table}_search_vector ON {table} USING gin (search_vector)"


def upgrade() -> None:

    op.create_table(
        "dataset",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner_department_id", sa.Uuid(), nullable=False),
        sa.Column(
            "category",
            sa.Enum(
                "base",
                "thematic",
                "departmental",
                name="dataset_category",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("class_code", sa.String(length=64), nullable=True),
        sa.Column(
            "base_kind",
            sa.Enum(
                "map",
                "population",
                "housing",
                "legal_entity",
                "credit",
                "license",
                name="dataset_base_kind",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=True,
        ),
        sa.Column(
            "share_type",
            sa.Enum(
                "unconditional",
                "conditional",
                "none",
                name="dataset_share_type",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("share_condition", sa.Text(), nullable=True),
        sa.Column("legal_basis", sa.Text(), nullable=True),
        sa.Column(
            "open_type",
            sa.Enum(
                "open",
                "conditional_open",
                "not_open",
                name="dataset_open_type",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "data_grade",
            sa.Enum(
                "general",
                "important",
                "core",
                name="dataset_data_grade",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "sensitivity",
            sa.Enum(
                "L1",
                "L2",
                "L3",
                "L4",
                name="dataset_sensitivity",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "update_cycle",
            sa.Enum(
                "realtime",
                "daily",
                "weekly",
                "dekad",
                "monthly",
                "quarterly",
                "semiannual",
                "annual",
                "irregular",
                name="dataset_update_cycle",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("publication_lag_days", sa.Integer(), nullable=False),
        sa.Column("share_methods", sa.JSON(), nullable=False),
        sa.Column("temporal_start", sa.Date(), nullable=True),
        sa.Column("temporal_end", sa.Date(), nullable=True),
        sa.Column("spatial_coverage", sa.String(length=200), nullable=True),
        sa.Column("aggregated", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "published",
                "deprecated",
                name="dataset_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("last_updated_at", core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("due_at", core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stale_at", core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("search_tokens", sa.Text(), nullable=False),
        sa.Column("title_tokens", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            core.models.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            core.models.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["owner_department_id"],
            ["department.id"],
            name=op.f("fk_dataset_owner_department_id_department"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset")),
        sa.UniqueConstraint("code", name=op.f("uq_dataset_code")),
    )
    with op.batch_alter_table("dataset", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dataset_due_at"), ["due_at"], unique=False)
        batch_op.create_index(
            "ix_dataset_filters", ["status", "category", "share_type", "sensitivity"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_dataset_owner_department_id"), ["owner_department_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_dataset_stale_at"), ["stale_at"], unique=False)
        batch_op.create_index("ix_dataset_updated_at", ["updated_at"], unique=False)

    op.create_table(
        "data_item",
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "data_type",
            sa.Enum(
                "string",
                "integer",
                "decimal",
                "boolean",
                "date",
                "datetime",
                "geometry",
                name="data_item_type",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.Column("nullable", sa.Boolean(), nullable=False),
        sa.Column("is_key", sa.Boolean(), nullable=False),
        sa.Column("constraints", sa.JSON(), nullable=False),
        sa.Column(
            "sensitivity",
            sa.Enum(
                "L1",
                "L2",
                "L3",
                "L4",
                name="data_item_sensitivity",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=True,
        ),
        sa.Column("search_tokens", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset.id"],
            name=op.f("fk_data_item_dataset_id_dataset"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_item")),
        sa.UniqueConstraint("code", name=op.f("uq_data_item_code")),
    )
    with op.batch_alter_table("data_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_item_dataset_id"), ["dataset_id"], unique=False)

    dialect = op.get_bind().dialect.name
    for table in ("dataset", "data_item"):
        if dialect == "sqlite":
            op.execute(FTS5.format(table=table))
        elif dialect == "postgresql":
            op.execute(TSVECTOR.format(table=table))
            op.execute(GIN.format(table=table))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in ("dataset", "data_item"):
        if dialect == "sqlite":
            op.execute(f"DROP TABLE IF EXISTS {table}_fts")
        elif dialect == "postgresql":
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_search_vector")

    with op.batch_alter_table("data_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_item_dataset_id"))

    op.drop_table("data_item")
    with op.batch_alter_table("dataset", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_updated_at")
        batch_op.drop_index(batch_op.f("ix_dataset_stale_at"))
        batch_op.drop_index(batch_op.f("ix_dataset_owner_department_id"))
        batch_op.drop_index("ix_dataset_filters")
        batch_op.drop_index(batch_op.f("ix_dataset_due_at"))

    op.drop_table("dataset")
