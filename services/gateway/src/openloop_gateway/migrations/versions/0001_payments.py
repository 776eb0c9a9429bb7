"""Payments table.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("payment_id", sa.String(32), primary_key=True),
        sa.Column("participant_id", sa.String(63), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("payer", sa.String(80), nullable=False),
        sa.Column("payee", sa.String(80), nullable=False),
        sa.Column("amount_satang", sa.BigInteger, nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("payee_participant_id", sa.String(63), nullable=False, server_default=""),
        sa.Column("ledger_transfer_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("rule_set_version", sa.String(64), nullable=False, server_default=""),
        sa.Column("failure_reason", sa.String(64), nullable=False, server_default=""),
        sa.Column("failure_rule_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("failure_rule_reason", sa.String(64), nullable=False, server_default=""),
        sa.Column("failure_message", sa.String(500), nullable=False, server_default=""),
        sa.Column("trace_id", sa.String(32), nullable=False, server_default=""),
        sa.Column(
            "create_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "update_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("participant_id", "idempotency_key", name="payments_idempotency_key"),
        sa.CheckConstraint("amount_satang > 0", name="payments_amount_positive"),
        sa.CheckConstraint(
            "state IN ('PENDING', 'COMPLETED', 'REJECTED', 'FAILED')", name="payments_state_known"
        ),
    )
    op.create_index(
        "payments_pending_by_update_time",
        "payments",
        ["update_time"],
        postgresql_where=sa.text("state = 'PENDING'"),
    )


def downgrade() -> None:
    op.drop_table("payments")
