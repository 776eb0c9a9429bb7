"""The scheduled cut-off a settlement cycle was closed for, when the cut-off scheduler closed
it (``cutoffs.py``); NULL for a close by an operator and for every cycle closed before.

``close_time`` is when the close committed, which for a close that caught up a missed
cut-off (a restart, a database outage) is later than the cut-off it stands for: an auditor
reads both.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "settlement_cycles", sa.Column("cutoff_time", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_check_constraint(
        op.f("ck_settlement_cycles_cutoff_closed"),
        "settlement_cycles",
        "cutoff_time IS NULL OR state <> 'OPEN'",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_settlement_cycles_cutoff_closed"), "settlement_cycles")
    op.drop_column("settlement_cycles", "cutoff_time")
