"""When each payer first spent from their wallet, for the spending deadline.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "first_uses",
        sa.Column("payer", sa.String(80), primary_key=True),
        sa.Column("first_use_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payment_id", sa.String(32), nullable=False),
    )
    # Payments completed before this table: the earliest of each payer.
    op.execute(
        "INSERT INTO first_uses (payer, first_use_time, payment_id)"
        " SELECT DISTINCT ON (payer) payer, update_time, payment_id FROM payments"
        " WHERE state = 'COMPLETED' ORDER BY payer, update_time"
    )


def downgrade() -> None:
    op.drop_table("first_uses")
