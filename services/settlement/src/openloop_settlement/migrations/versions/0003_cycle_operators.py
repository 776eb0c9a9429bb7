"""Who closed and who settled each settlement cycle.

Both columns are NULL for cycles closed or settled before this migration: who did it then
is only in the service's logs, and the migration does not pretend to know.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 00:00:00

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("settlement_cycles", sa.Column("closed_by", sa.Text(), nullable=True))
    op.add_column("settlement_cycles", sa.Column("settled_by", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("settlement_cycles", "settled_by")
    op.drop_column("settlement_cycles", "closed_by")
