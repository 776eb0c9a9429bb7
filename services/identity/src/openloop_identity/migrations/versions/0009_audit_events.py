"""The operators' audit trail: who changed what, and who read whose personal data.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("event_id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("acting_participant_id", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("details", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_audit_events"),
        sa.CheckConstraint("actor LIKE 'operator:%'", name="ck_audit_events_actor"),
        sa.CheckConstraint("char_length(resource) > 0", name="ck_audit_events_resource"),
    )
    op.create_index("ix_audit_events_resource", "audit_events", ["resource", "event_id"])
    op.create_index("ix_audit_events_action", "audit_events", ["action", "event_id"])


def downgrade() -> None:
    op.drop_table("audit_events")
