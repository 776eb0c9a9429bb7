"""Transfer columns the database keeps within their Merkle leaf fields.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 00:00:00

Every committed transfer is a leaf (:mod:`openloop_ledger.leaf`) whose ``flags``
field is 16 bits: a flag value outside it cannot be sealed, and stalls the sealer
on that row. The ledger writes NULL, never '', for "no pending transfer", and the
leaf encodes both alike, so '' could only be an edit the log cannot see. The
verifier reports both as changed rows; these constraints keep them out of the
database in the first place, as the existing ranges do for ledger, code and timeout.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_UINT16 = 2**16 - 1


def upgrade() -> None:
    op.create_check_constraint(
        op.f("ck_transfers_flags_range"), "transfers", f"flags BETWEEN 0 AND {MAX_UINT16}"
    )
    op.create_check_constraint(
        op.f("ck_transfers_pending_id_not_empty"), "transfers", "pending_id <> ''"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_transfers_pending_id_not_empty"), "transfers", type_="check")
    op.drop_constraint(op.f("ck_transfers_flags_range"), "transfers", type_="check")
