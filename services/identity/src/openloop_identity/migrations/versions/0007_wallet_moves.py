"""Wallets that move between participants: a generation per citizen and the moves' history.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "citizens",
        sa.Column("wallet_generation", sa.Integer(), nullable=False, server_default="1"),
    )
    op.add_column("citizens", sa.Column("wallet_move_id", sa.Text(), nullable=True))
    op.create_check_constraint(
        "ck_citizens_wallet_generation", "citizens", "wallet_generation >= 1"
    )
    op.create_table(
        "wallet_moves",
        sa.Column("citizen_id", sa.Text(), nullable=False),
        sa.Column("wallet_move_id", sa.Text(), nullable=False),
        sa.Column("from_participant_id", sa.Text(), nullable=False),
        sa.Column("to_participant_id", sa.Text(), nullable=False),
        sa.Column("from_generation", sa.Integer(), nullable=False),
        sa.Column("assertion_digest", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column(
            "create_time",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("complete_time", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('IN_PROGRESS', 'COMPLETED')", name="ck_wallet_moves_state"),
        sa.CheckConstraint(
            "from_participant_id <> to_participant_id", name="ck_wallet_moves_moves_elsewhere"
        ),
        sa.CheckConstraint(
            "assertion_digest ~ '^[0-9a-f]{64}$'", name="ck_wallet_moves_assertion_digest"
        ),
        sa.CheckConstraint(
            "(state = 'COMPLETED') = (complete_time IS NOT NULL)",
            name="ck_wallet_moves_complete_time",
        ),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizens.citizen_id"], name="fk_wallet_moves_citizen_id_citizens"
        ),
        sa.ForeignKeyConstraint(
            ["from_participant_id"],
            ["participants.participant_id"],
            name="fk_wallet_moves_from_participant_id_participants",
        ),
        sa.ForeignKeyConstraint(
            ["to_participant_id"],
            ["participants.participant_id"],
            name="fk_wallet_moves_to_participant_id_participants",
        ),
        sa.PrimaryKeyConstraint("citizen_id", "wallet_move_id", name="pk_wallet_moves"),
    )
    op.create_index(
        "wallet_moves_one_in_progress",
        "wallet_moves",
        ["citizen_id"],
        unique=True,
        postgresql_where=sa.text("state = 'IN_PROGRESS'"),
    )


def downgrade() -> None:
    op.drop_index("wallet_moves_one_in_progress", table_name="wallet_moves")
    op.drop_table("wallet_moves")
    op.drop_constraint("ck_citizens_wallet_generation", "citizens", type_="check")
    op.drop_column("citizens", "wallet_move_id")
    op.drop_column("citizens", "wallet_generation")
