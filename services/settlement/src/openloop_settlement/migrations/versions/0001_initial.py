"""Obligations and net positions.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "obligations",
        sa.Column("transfer_id", sa.String(64), nullable=False),
        sa.Column("debit_participant_id", sa.String(63), nullable=False),
        sa.Column("credit_participant_id", sa.String(63), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("inter_participant", sa.Boolean(), nullable=False),
        sa.Column(
            "record_time",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("transfer_id", name=op.f("pk_obligations")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_obligations_amount_positive")),
        sa.CheckConstraint(
            "inter_participant = (debit_participant_id <> credit_participant_id)",
            name=op.f("ck_obligations_inter_participant_derived"),
        ),
    )
    op.create_table(
        "positions",
        sa.Column("participant_id", sa.String(63), nullable=False),
        sa.Column("net_position", sa.BigInteger(), nullable=False),
        sa.Column("transfer_count", sa.BigInteger(), nullable=False),
        sa.Column(
            "update_time",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("participant_id", name=op.f("pk_positions")),
        sa.CheckConstraint("transfer_count > 0", name=op.f("ck_positions_transfer_count_positive")),
    )


def downgrade() -> None:
    op.drop_table("positions")
    op.drop_table("obligations")
