"""Rule sets (immutable, by version) and the history of their activations.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "rule_sets",
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("version", name="pk_rule_sets"),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="ck_rule_sets_sha256"),
    )
    op.create_table(
        "activations",
        sa.Column("activation_id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column(
            "activated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("activated_by", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("activation_id", name="pk_activations"),
        sa.ForeignKeyConstraint(
            ["version"], ["rule_sets.version"], name="fk_activations_version_rule_sets"
        ),
    )


def downgrade() -> None:
    op.drop_table("activations")
    op.drop_table("rule_sets")
