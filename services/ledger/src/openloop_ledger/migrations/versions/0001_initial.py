"""Accounts and transfers.

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

MAX_UINT32 = 2**32 - 1


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("ledger", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.BigInteger(), nullable=False),
        sa.Column("debits_must_not_exceed_credits", sa.Boolean(), nullable=False),
        sa.Column("credits_must_not_exceed_debits", sa.Boolean(), nullable=False),
        sa.Column("user_data", sa.Text(), nullable=False),
        sa.Column("participant_id", sa.String(63), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "create_time",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.CheckConstraint(
            f"ledger BETWEEN 1 AND {MAX_UINT32}", name=op.f("ck_accounts_ledger_range")
        ),
        sa.CheckConstraint(f"code BETWEEN 1 AND {MAX_UINT32}", name=op.f("ck_accounts_code_range")),
        sa.CheckConstraint(
            "NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)",
            name=op.f("ck_accounts_flags_exclusive"),
        ),
        sa.CheckConstraint(
            "debits_posted >= 0", name=op.f("ck_accounts_debits_posted_nonnegative")
        ),
        sa.CheckConstraint(
            "credits_posted >= 0", name=op.f("ck_accounts_credits_posted_nonnegative")
        ),
        sa.CheckConstraint(
            "NOT debits_must_not_exceed_credits OR debits_posted <= credits_posted",
            name=op.f("ck_accounts_debits_within_credits"),
        ),
        sa.CheckConstraint(
            "NOT credits_must_not_exceed_debits OR credits_posted <= debits_posted",
            name=op.f("ck_accounts_credits_within_debits"),
        ),
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("debit_account_id", sa.String(64), nullable=False),
        sa.Column("credit_account_id", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("ledger", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.BigInteger(), nullable=False),
        sa.Column("user_data", sa.Text(), nullable=False),
        sa.Column(
            "create_time",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
        sa.UniqueConstraint("seq", name=op.f("uq_transfers_seq")),
        sa.ForeignKeyConstraint(
            ["debit_account_id"],
            ["accounts.id"],
            name=op.f("fk_transfers_debit_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["credit_account_id"],
            ["accounts.id"],
            name=op.f("fk_transfers_credit_account_id_accounts"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_transfers_amount_positive")),
        sa.CheckConstraint(
            "debit_account_id <> credit_account_id", name=op.f("ck_transfers_accounts_different")
        ),
        sa.CheckConstraint(
            f"ledger BETWEEN 1 AND {MAX_UINT32}", name=op.f("ck_transfers_ledger_range")
        ),
        sa.CheckConstraint(
            f"code BETWEEN 1 AND {MAX_UINT32}", name=op.f("ck_transfers_code_range")
        ),
    )


def downgrade() -> None:
    op.drop_table("transfers")
    op.drop_table("accounts")
