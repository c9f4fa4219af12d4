"""controlled sharing: item masking defaults, scenario members and contractors, grant purpose,
download receipts, the countersignature state

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 16:10:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINE_STATES = [
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
]
COUNTERSIGN = "awaiting_countersignature"
STATE_CHECK = "ck_request_line_request_line_state"


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            core.models.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            core.models.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
    ]


def _set_line_states(states: list[str]) -> None:
    allowed = ", ".join(f"'{s}'" for s in states)
    with op.batch_alter_table("request_line", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(STATE_CHECK), type_="check")
        batch_op.create_check_constraint(op.f(STATE_CHECK), sa.text(f"state IN ({allowed})"))


def upgrade() -> None:
    op.create_table(
        "scenario_member",
        sa.Column("scenario_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "member",
                "contractor",
                name="scenario_member_kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("acting_for_department_id", sa.Uuid(), nullable=False),
        sa.Column("valid_from", core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_until", core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.Column("ended_at", core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=200), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_scenario_member_account_id_account"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["acting_for_department_id"],
            ["department.id"],
            name=op.f("fk_scenario_member_acting_for_department_id_department"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["scenario_id"],
            ["scenario.id"],
            name=op.f("fk_scenario_member_scenario_id_scenario"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenario_member")),
    )
    with op.batch_alter_table("scenario_member", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scenario_member_account_scenario", ["account_id", "scenario_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_scenario_member_scenario_id"), ["scenario_id"], unique=False
        )

    op.create_table(
        "receipt",
        sa.Column("grant_id", sa.Uuid(), nullable=False),
        sa.Column("release_id", sa.Uuid(), nullable=False),
        sa.Column("account_subject", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grant.id"], name=op.f("fk_receipt_grant_id_grant"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["release_id"],
            ["release.id"],
            name=op.f("fk_receipt_release_id_release"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipt")),
    )
    with op.batch_alter_table("receipt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_receipt_grant_id"), ["grant_id"], unique=False)

    with op.batch_alter_table("data_item", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "default_protection",
                sa.Enum(
                    "hash",
                    "partial",
                    "null",
                    "none",
                    name="data_item_protection",
                    native_enum=False,
                    create_constraint=True,
                    length=24,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "personal_info",
                sa.Enum(
                    "id_number",
                    "phone",
                    "name",
                    "address",
                    "licence_plate",
                    "bank_account",
                    "email",
                    "other",
                    name="data_item_personal_info",
                    native_enum=False,
                    create_constraint=True,
                    length=24,
                ),
                nullable=True,
            )
        )

    with op.batch_alter_table("grant", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.Text(), nullable=True))
    # Grants issued before this revision take their request's purpose.
    grant = sa.table("grant", sa.column("purpose"), sa.column("request_id"))
    request = sa.table("request", sa.column("id"), sa.column("purpose"))
    op.execute(
        grant.update().values(
            purpose=sa.select(request.c.purpose)
            .where(request.c.id == grant.c.request_id)
            .scalar_subquery()
        )
    )

    with op.batch_alter_table("scenario", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ends_on", sa.Date(), nullable=True))

    _set_line_states([*LINE_STATES, COUNTERSIGN])


def downgrade() -> None:
    # Lines waiting for a countersignature go back to the leader's desk.
    line = sa.table("request_line", sa.column("state"))
    op.execute(line.update().where(line.c.state == COUNTERSIGN).values(state="escalated"))
    _set_line_states(LINE_STATES)

    with op.batch_alter_table("scenario", schema=None) as batch_op:
        batch_op.drop_column("ends_on")

    with op.batch_alter_table("grant", schema=None) as batch_op:
        batch_op.drop_column("purpose")

    with op.batch_alter_table("data_item", schema=None) as batch_op:
        # SQLite's table copy would keep the checks of the dropped columns: drop them first.
        batch_op.drop_constraint(op.f("ck_data_item_data_item_personal_info"), type_="check")
        batch_op.drop_constraint(op.f("ck_data_item_data_item_protection"), type_="check")
        batch_op.drop_column("personal_info")
        batch_op.drop_column("default_protection")

    with op.batch_alter_table("receipt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_receipt_grant_id"))
    op.drop_table("receipt")

    with op.batch_alter_table("scenario_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scenario_member_scenario_id"))
        batch_op.drop_index("ix_scenario_member_account_scenario")
    op.drop_table("scenario_member")
