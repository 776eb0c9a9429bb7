"""What each wallet-hosting participant does: payer bank, acquirer, or both.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "participants",
        sa.Column("capabilities", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}"),
    )
    op.alter_column("participants", "capabilities", server_default=None)
    # Banks and e-wallets registered before capabilities did both.
    op.execute(
        "UPDATE participants SET capabilities = ARRAY['PAYER_BANK', 'ACQUIRER']"
        " WHERE role IN ('BANK', 'E_WALLET')"
    )
    op.create_check_constraint(
        "ck_participants_capabilities",
        "participants",
        "capabilities <@ ARRAY['PAYER_BANK', 'ACQUIRER']::text[]",
    )


def downgrade() -> None:
    op.drop_constraint("ck_participants_capabilities", "participants", type_="check")
    op.drop_column("participants", "capabilities")
