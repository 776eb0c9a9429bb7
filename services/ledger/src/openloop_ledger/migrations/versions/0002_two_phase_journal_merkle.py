"""Two-phase transfers, account history, a gap-free journal and the Merkle log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 00:00:00

``transfers.seq`` (an identity in application order) becomes ``position``, assigned
in commit order from the one-row ``journal``; existing rows keep their order,
renumbered from 0 without gaps.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_UINT32 = 2**32 - 1


def upgrade() -> None:
    _accounts()
    _transfers()
    _journal()
    op.create_table(
        "account_balances",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.String(80), nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "position", name=op.f("pk_account_balances")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_account_balances_account_id_accounts")
        ),
    )
    op.create_table(
        "pending_timeouts",
        sa.Column("transfer_id", sa.String(80), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("transfer_id", name=op.f("pk_pending_timeouts")),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["transfers.id"],
            name=op.f("fk_pending_timeouts_transfer_id_transfers"),
        ),
    )
    op.create_index(
        op.f("ix_pending_timeouts_expires_at"), "pending_timeouts", ["expires_at"], unique=False
    )
    op.create_table(
        "merkle_tiles",
        sa.Column("tile_level", sa.SmallInteger(), nullable=False),
        sa.Column("tile_index", sa.BigInteger(), nullable=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tile_level", "tile_index", name=op.f("pk_merkle_tiles")),
        sa.CheckConstraint(
            "octet_length(hashes) BETWEEN 32 AND 8192", name=op.f("ck_merkle_tiles_width")
        ),
        sa.CheckConstraint(
            "octet_length(hashes) % 32 = 0", name=op.f("ck_merkle_tiles_whole_hashes")
        ),
    )
    op.create_table(
        "checkpoints",
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("right_edge", sa.LargeBinary(), nullable=False),
        sa.Column("signed_note", sa.Text(), nullable=False),
        sa.Column(
            "create_time", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_checkpoints")),
        sa.CheckConstraint(
            "octet_length(root_hash) = 32", name=op.f("ck_checkpoints_root_hash_size")
        ),
    )


def _accounts() -> None:
    # Every batch rewrites the balances of the accounts it touches: room on each page lets
    # PostgreSQL update them in place (HOT), without a new primary-key entry per update.
    op.execute("ALTER TABLE accounts SET (fillfactor = 70)")
    for column in ("history", "created_closed", "closed"):
        op.add_column(
            "accounts", sa.Column(column, sa.Boolean(), server_default="false", nullable=False)
        )
    for column in ("debits_pending", "credits_pending"):
        op.add_column(
            "accounts", sa.Column(column, sa.BigInteger(), server_default="0", nullable=False)
        )
    op.create_check_constraint(
        op.f("ck_accounts_debits_pending_nonnegative"), "accounts", "debits_pending >= 0"
    )
    op.create_check_constraint(
        op.f("ck_accounts_credits_pending_nonnegative"), "accounts", "credits_pending >= 0"
    )
    op.drop_constraint(op.f("ck_accounts_debits_within_credits"), "accounts", type_="check")
    op.drop_constraint(op.f("ck_accounts_credits_within_debits"), "accounts", type_="check")
    op.create_check_constraint(
        op.f("ck_accounts_debits_within_credits"),
        "accounts",
        "NOT debits_must_not_exceed_credits OR debits_pending + debits_posted <= credits_posted",
    )
    op.create_check_constraint(
        op.f("ck_accounts_credits_within_debits"),
        "accounts",
        "NOT credits_must_not_exceed_debits OR credits_pending + credits_posted <= debits_posted",
    )


def _transfers() -> None:
    op.alter_column("transfers", "id", type_=sa.String(80))
    op.alter_column("transfers", "seq", new_column_name="position")
    op.execute("ALTER TABLE transfers ALTER COLUMN position DROP IDENTITY")
    # Renumber with no unique constraint in the way (rows are updated in no set order).
    op.drop_constraint("uq_transfers_seq", "transfers", type_="unique")
    op.execute(
        "UPDATE transfers SET position = ordered.rank - 1 FROM "
        "(SELECT id, row_number() OVER (ORDER BY position) AS rank FROM transfers) AS ordered "
        "WHERE transfers.id = ordered.id"
    )
    op.create_unique_constraint(op.f("uq_transfers_position"), "transfers", ["position"])
    op.alter_column("transfers", "create_time", server_default=None)
    op.add_column("transfers", sa.Column("pending_id", sa.String(80), nullable=True))
    op.add_column(
        "transfers", sa.Column("timeout", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.add_column("transfers", sa.Column("flags", sa.Integer(), server_default="0", nullable=False))
    op.create_index(
        "uq_transfers_pending_id",
        "transfers",
        ["pending_id"],
        unique=True,
        postgresql_where=sa.text("pending_id IS NOT NULL"),
    )
    # The planner only records transfers between accounts it locked; the verifier reports
    # any entry naming a missing account. The foreign keys cost two probes per row.
    op.drop_constraint(
        op.f("fk_transfers_debit_account_id_accounts"), "transfers", type_="foreignkey"
    )
    op.drop_constraint(
        op.f("fk_transfers_credit_account_id_accounts"), "transfers", type_="foreignkey"
    )
    op.drop_constraint(op.f("ck_transfers_amount_positive"), "transfers", type_="check")
    op.create_check_constraint(op.f("ck_transfers_amount_nonnegative"), "transfers", "amount >= 0")
    op.create_check_constraint(
        op.f("ck_transfers_position_nonnegative"), "transfers", "position >= 0"
    )
    op.create_check_constraint(
        op.f("ck_transfers_timeout_range"), "transfers", f"timeout BETWEEN 0 AND {MAX_UINT32}"
    )
    op.create_index(
        "ix_transfers_debit_account_id_position", "transfers", ["debit_account_id", "position"]
    )
    op.create_index(
        "ix_transfers_credit_account_id_position", "transfers", ["credit_account_id", "position"]
    )


def _journal() -> None:
    op.create_table(
        "journal",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("batch_token", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal")),
        sa.CheckConstraint("id = 1", name=op.f("ck_journal_single_row")),
        sa.CheckConstraint("size >= 0", name=op.f("ck_journal_size_nonnegative")),
    )
    op.execute("INSERT INTO journal (id, size) SELECT 1, count(*) FROM transfers")


def downgrade() -> None:
    raise NotImplementedError("the journal and the Merkle log cannot be undone without data loss")
