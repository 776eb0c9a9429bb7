"""Participants' client certificates and assertion keys, several valid at once for rotation.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "participant_credentials",
        sa.Column("credential_id", sa.Text(), nullable=False),
        sa.Column("participant_id", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("certificate_sha256", sa.Text(), nullable=True),
        sa.Column("certificate_subject", sa.Text(), nullable=True),
        sa.Column("certificate_san_uri", sa.Text(), nullable=True),
        sa.Column("key_id", sa.Text(), nullable=True),
        sa.Column("public_jwk", sa.Text(), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoke_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "create_time",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.PrimaryKeyConstraint("credential_id", name="pk_participant_credentials"),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.participant_id"],
            name="fk_participant_credentials_participant_id_participants",
        ),
        sa.UniqueConstraint("request_id", name="uq_participant_credentials_request_id"),
        sa.UniqueConstraint(
            "certificate_sha256", name="uq_participant_credentials_certificate_sha256"
        ),
        sa.UniqueConstraint("participant_id", "key_id", name="uq_participant_credentials_key_id"),
        sa.CheckConstraint(
            "kind IN ('CLIENT_CERTIFICATE', 'ASSERTION_KEY')",
            name="ck_participant_credentials_kind",
        ),
        sa.CheckConstraint(
            "(kind = 'CLIENT_CERTIFICATE') = (certificate_sha256 IS NOT NULL)"
            " AND (kind = 'ASSERTION_KEY') = (key_id IS NOT NULL AND public_jwk IS NOT NULL)",
            name="ck_participant_credentials_material",
        ),
        sa.CheckConstraint(
            "certificate_sha256 ~ '^[0-9a-f]{64}$'",
            name="ck_participant_credentials_certificate_sha256",
        ),
        sa.CheckConstraint("not_before < not_after", name="ck_participant_credentials_validity"),
    )


def downgrade() -> None:
    op.drop_table("participant_credentials")
