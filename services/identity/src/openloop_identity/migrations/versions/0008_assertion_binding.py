"""The request a spent assertion was used for, so that request's retries may use it again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "assertion_replays",
        sa.Column("binding", sa.Text(), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_column("assertion_replays", "binding")
