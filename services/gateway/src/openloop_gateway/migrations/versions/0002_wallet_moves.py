"""Wallet moves, and the ledger accounts each payment was verified with.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "payments", sa.Column("payer_account", sa.String(64), nullable=False, server_default="")
    )
    op.add_column(
        "payments", sa.Column("payee_account", sa.String(64), nullable=False, server_default="")
    )
    op.create_table(
        "wallet_moves",
        sa.Column("wallet_move_id", sa.String(32), primary_key=True),
        sa.Column("participant_id", sa.String(63), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("citizen", sa.String(80), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("begun", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("from_participant_id", sa.String(63), nullable=False, server_default=""),
        sa.Column("from_account", sa.String(64), nullable=False, server_default=""),
        sa.Column("to_account", sa.String(64), nullable=False, server_default=""),
        sa.Column("amount_satang", sa.BigInteger, nullable=True),
        sa.Column("ledger_transfer_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("failure_reason", sa.String(64), nullable=False, server_default=""),
        sa.Column("failure_message", sa.String(500), nullable=False, server_default=""),
        sa.Column("trace_id", sa.String(32), nullable=False, server_default=""),
        sa.Column(
            "create_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "update_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint(
            "participant_id", "idempotency_key", name="wallet_moves_idempotency_key"
        ),
        sa.CheckConstraint("amount_satang >= 0", name="wallet_moves_amount_not_negative"),
        sa.CheckConstraint(
            "state IN ('PENDING', 'COMPLETED', 'FAILED')", name="wallet_moves_state_known"
        ),
    )
    op.create_index(
        "wallet_moves_pending_by_update_time",
        "wallet_moves",
        ["update_time"],
        postgresql_where=sa.text("state = 'PENDING'"),
    )


def downgrade() -> None:
    op.drop_index("wallet_moves_pending_by_update_time", table_name="wallet_moves")
    op.drop_table("wallet_moves")
    op.drop_column("payments", "payee_account")
    op.drop_column("payments", "payer_account")
