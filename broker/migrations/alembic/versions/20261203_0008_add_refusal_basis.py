"""add refusal basis

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 15:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # 政务数据共享条例 (2025): a refusal names its legal basis, apart from its reason.
    with op.batch_alter_table("request_line", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refusal_basis", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("request_line", schema=None) as batch_op:
        batch_op.drop_column("refusal_basis")
