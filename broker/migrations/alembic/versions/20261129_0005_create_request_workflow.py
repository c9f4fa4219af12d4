"""create scenario request line decision grant

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 10:14:38.681047+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "idempotency_record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", core.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_record")),
        sa.UniqueConstraint("subject", "key", name=op.f("uq_idempotency_record_subject_key")),
    )
    op.create_table(
        "scenario",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("lead_department_id", sa.Uuid(), nullable=False),
        sa.Column(
            "phase",
            sa.Enum(
                "preparation",
                "development",
                "acceptance",
                "operation",
                "retired",
                name="scenario_phase",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("members", sa.JSON(), nullable=False),
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
            ["lead_department_id"],
            ["department.id"],
            name=op.f("fk_scenario_lead_department_id_department"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenario")),
        sa.UniqueConstraint("code", name=op.f("uq_scenario_code")),
    )
    with op.batch_alter_table("scenario", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scenario_lead_department_id"), ["lead_department_id"], unique=False
        )

    op.create_table(
        "request",
        sa.Column("scenario_id", sa.Uuid(), nullable=False),
        sa.Column("requesting_department_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=True),
        sa.Column("usage_start", sa.Date(), nullable=False),
        sa.Column("usage_end", sa.Date(), nullable=False),
        sa.Column("submitted_at", core.models.UTCDateTime(timezone=True), nullable=True),
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
            ["requesting_department_id"],
            ["department.id"],
            name=op.f("fk_request_requesting_department_id_department"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["scenario_id"],
            ["scenario.id"],
            name=op.f("fk_request_scenario_id_scenario"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request")),
    )
    with op.batch_alter_table("request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_request_requesting_department_id"),
            ["requesting_department_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_request_scenario_id"), ["scenario_id"], unique=False)

    op.create_table(
        "request_line",
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "item",
                "dataset",
                "need",
                name="request_line_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("item_id", sa.Uuid(), nullable=True),
        sa.Column("dataset_id", sa.Uuid(), nullable=True),
        sa.Column("need", sa.Text(), nullable=True),
        sa.Column("owner_department_id", sa.Uuid(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "draft",
                "auto_approved",
                "pending_owner",
                "pending_registration",
                "needs_info",
                "approved_with_conditions",
                "approved",
                "rejected",
                "escalated",
                "rejected_final",
                "withdrawn",
                "not_held",
                name="request_line_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("route_reason", sa.Text(), nullable=True),
        sa.Column("freshness_need", sa.JSON(), nullable=True),
        sa.Column("freshness_warning", sa.Text(), nullable=True),
        sa.Column("routed_at", core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("due_at", core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("clock_basis", sa.String(length=16), nullable=True),
        sa.Column("paused_at", core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("pending_approval", sa.JSON(), nullable=True),
        sa.Column("conditions", sa.JSON(), nullable=True),
        sa.Column("declaration", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("escalated_at", core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_at", core.models.UTCDateTime(timezone=True), nullable=True),
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
            ["dataset_id"],
            ["dataset.id"],
            name=op.f("fk_request_line_dataset_id_dataset"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["data_item.id"],
            name=op.f("fk_request_line_item_id_data_item"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["owner_department_id"],
            ["department.id"],
            name=op.f("fk_request_line_owner_department_id_department"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["request.id"],
            name=op.f("fk_request_line_request_id_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_line")),
    )
    with op.batch_alter_table("request_line", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_request_line_dataset_id"), ["dataset_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_request_line_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_request_line_item_id"), ["item_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_request_line_owner_department_id"), ["owner_department_id"], unique=False
        )
        batch_op.create_index(
            "ix_request_line_owner_state", ["owner_department_id", "state"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_request_line_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "decision",
        sa.Column("line_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor_subject", sa.String(length=200), nullable=False),
        sa.Column("actor_department", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=32), nullable=False),
        sa.Column("to_state", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"],
            ["request_line.id"],
            name=op.f("fk_decision_line_id_request_line"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision")),
    )
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_decision_line_id"), ["line_id"], unique=False)

    op.create_table(
        "grant",
        sa.Column("line_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("scenario_id", sa.Uuid(), nullable=False),
        sa.Column("grantee_department_id", sa.Uuid(), nullable=False),
        sa.Column("owner_department_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("valid_from", core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_until", core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "suspended",
                "revoked",
                "expired",
                name="grant_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("issued_by", sa.String(length=200), nullable=False),
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
            ["dataset_id"],
            ["dataset.id"],
            name=op.f("fk_grant_dataset_id_dataset"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["grantee_department_id"],
            ["department.id"],
            name=op.f("fk_grant_grantee_department_id_department"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["line_id"],
            ["request_line.id"],
            name=op.f("fk_grant_line_id_request_line"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["owner_department_id"],
            ["department.id"],
            name=op.f("fk_grant_owner_department_id_department"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["request.id"],
            name=op.f("fk_grant_request_id_request"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["scenario_id"],
            ["scenario.id"],
            name=op.f("fk_grant_scenario_id_scenario"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grant")),
        sa.UniqueConstraint("line_id", name=op.f("uq_grant_line_id")),
    )
    with op.batch_alter_table("grant", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grant_dataset_id"), ["dataset_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_grant_grantee_department_id"), ["grantee_department_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_grant_owner_department_id"), ["owner_department_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_grant_request_id"), ["request_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_grant_scenario_id"), ["scenario_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("grant", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grant_scenario_id"))
        batch_op.drop_index(batch_op.f("ix_grant_request_id"))
        batch_op.drop_index(batch_op.f("ix_grant_owner_department_id"))
        batch_op.drop_index(batch_op.f("ix_grant_grantee_department_id"))
        batch_op.drop_index(batch_op.f("ix_grant_dataset_id"))

    op.drop_table("grant")
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decision_line_id"))

    op.drop_table("decision")
    with op.batch_alter_table("request_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_line_request_id"))
        batch_op.drop_index("ix_request_line_owner_state")
        batch_op.drop_index(batch_op.f("ix_request_line_owner_department_id"))
        batch_op.drop_index(batch_op.f("ix_request_line_item_id"))
        batch_op.drop_index(batch_op.f("ix_request_line_due_at"))
        batch_op.drop_index(batch_op.f("ix_request_line_dataset_id"))

    op.drop_table("request_line")
    with op.batch_alter_table("request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_scenario_id"))
        batch_op.drop_index(batch_op.f("ix_request_requesting_department_id"))

    op.drop_table("request")
    with op.batch_alter_table("scenario", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scenario_lead_department_id"))

    op.drop_table("scenario")
    op.drop_table("idempotency_record")
