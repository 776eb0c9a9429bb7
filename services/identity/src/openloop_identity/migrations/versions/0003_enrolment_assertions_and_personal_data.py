"""Enrolment on an identity assertion: encrypted personal data, the assurance level proved,
eligibility attestations, guardian consent for minors, and the assertion replay guard.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_ATTESTATIONS = (
    "income_within_limit",
    "deposits_within_limit",
    "excluded",
    "earlier_phase_recipient",
)


def upgrade() -> None:
    op.add_column("citizens", sa.Column("personal_data", sa.LargeBinary(), nullable=True))
    op.add_column("citizens", sa.Column("identity_assurance_level", sa.Text(), nullable=True))
    op.add_column("citizens", sa.Column("assertion_digest", sa.Text(), nullable=True))
    for name in _ATTESTATIONS:
        # Citizens enrolled before attestations existed attested nothing.
        op.add_column(
            "citizens", sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())
        )
        op.alter_column("citizens", name, server_default=None)
    op.add_column("citizens", sa.Column("guardian_consent_reference", sa.Text(), nullable=True))
    op.add_column(
        "citizens",
        sa.Column("guardian_consent_time", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_check_constraint(
        "ck_citizens_assertion_digest", "citizens", "assertion_digest ~ '^[0-9a-f]{64}$'"
    )
    op.create_check_constraint(
        "ck_citizens_guardian_consent",
        "citizens",
        "(guardian_consent_reference IS NULL) = (guardian_consent_time IS NULL)",
    )
    op.create_table(
        "assertion_replays",
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("jti", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "jti", name="pk_assertion_replays"),
    )
    op.create_index(
        "ix_assertion_replays_expires_at", "assertion_replays", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_assertion_replays_expires_at", table_name="assertion_replays")
    op.drop_table("assertion_replays")
    op.drop_constraint("ck_citizens_guardian_consent", "citizens", type_="check")
    op.drop_constraint("ck_citizens_assertion_digest", "citizens", type_="check")
    for name in (
        "guardian_consent_time",
        "guardian_consent_reference",
        *reversed(_ATTESTATIONS),
        "assertion_digest",
        "identity_assurance_level",
        "personal_data",
    ):
        op.drop_column("citizens", name)
