"""Which key wraps each citizen's personal data (for rotation), and when it was erased.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # NULL for records sealed before this column: the re-wrap job reads their key id and
    # fills it in as it goes.
    op.add_column("citizens", sa.Column("personal_data_kek", sa.Text(), nullable=True))
    op.add_column("citizens", sa.Column("erase_time", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_citizens_personal_data_kek", "citizens", ["personal_data_kek"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_citizens_personal_data_kek", table_name="citizens")
    op.drop_column("citizens", "erase_time")
    op.drop_column("citizens", "personal_data_kek")
