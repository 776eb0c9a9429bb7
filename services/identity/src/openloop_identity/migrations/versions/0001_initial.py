"""Participants, citizens (by keyed citizen-ID token only) and merchants.

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


def _create_time() -> sa.Column[object]:
    return sa.Column(
        "create_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def upgrade() -> None:
    op.create_table(
        "participants",
        sa.Column("participant_id", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        _create_time(),
        sa.PrimaryKeyConstraint("participant_id", name="pk_participants"),
        sa.UniqueConstraint("request_id", name="uq_participants_request_id"),
        sa.CheckConstraint(
            "participant_id ~ '^[a-z0-9][a-z0-9-]{0,62}$'", name="ck_participants_participant_id"
        ),
        sa.CheckConstraint(
            "role IN ('TREASURY', 'BANK', 'E_WALLET', 'OPERATOR')", name="ck_participants_role"
        ),
        sa.CheckConstraint(
            "state IN ('ACTIVE', 'SUSPENDED', 'CLOSED')", name="ck_participants_state"
        ),
    )
    op.create_table(
        "citizens",
        sa.Column("citizen_id", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("citizen_token", sa.Text(), nullable=False),
        sa.Column("home_district_code", sa.Text(), nullable=False),
        sa.Column("hosting_participant_id", sa.Text(), nullable=False),
        _create_time(),
        sa.PrimaryKeyConstraint("citizen_id", name="pk_citizens"),
        sa.UniqueConstraint("request_id", name="uq_citizens_request_id"),
        sa.UniqueConstraint("citizen_token", name="uq_citizens_citizen_token"),
        sa.ForeignKeyConstraint(
            ["hosting_participant_id"],
            ["participants.participant_id"],
            name="fk_citizens_hosting_participant_id_participants",
        ),
        sa.CheckConstraint("citizen_token ~ '^[0-9a-f]{64}$'", name="ck_citizens_citizen_token"),
        sa.CheckConstraint(
            "home_district_code ~ '^[0-9]{4}$'", name="ck_citizens_home_district_code"
        ),
    )
    op.create_table(
        "merchants",
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("tax_id", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("district_code", sa.Text(), nullable=False),
        sa.Column("size_class", sa.Text(), nullable=False),
        sa.Column("hosting_participant_id", sa.Text(), nullable=False),
        _create_time(),
        sa.PrimaryKeyConstraint("merchant_id", name="pk_merchants"),
        sa.UniqueConstraint("request_id", name="uq_merchants_request_id"),
        sa.UniqueConstraint("tax_id", name="uq_merchants_tax_id"),
        sa.ForeignKeyConstraint(
            ["hosting_participant_id"],
            ["participants.participant_id"],
            name="fk_merchants_hosting_participant_id_participants",
        ),
        sa.CheckConstraint("tax_id ~ '^0[0-9]{12}$'", name="ck_merchants_tax_id"),
        sa.CheckConstraint("district_code ~ '^[0-9]{4}$'", name="ck_merchants_district_code"),
        sa.CheckConstraint(
            "size_class IN ('SMALL_SHOP', 'LARGE_CHAIN')", name="ck_merchants_size_class"
        ),
        sa.CheckConstraint(
            "char_length(display_name) BETWEEN 1 AND 200", name="ck_merchants_display_name"
        ),
    )


def downgrade() -> None:
    op.drop_table("merchants")
    op.drop_table("citizens")
    op.drop_table("participants")
