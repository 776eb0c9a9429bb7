"""Merchant facts the rules need (category, channel, tax status), settlement account, and
the alias directory (every citizen ID token, tax ID and phone token names one party).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_MERCHANT_COLUMNS = (
    # Existing merchants predate the facts: "unspecified" values an operator then corrects.
    sa.Column("category", sa.Text(), nullable=False, server_default="unspecified"),
    sa.Column("channel", sa.Text(), nullable=False, server_default="IN_PERSON"),
    sa.Column("vat_registered", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("corporate_income_tax", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("personal_income_tax_s40", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column(
        "tax_years_filed",
        postgresql.ARRAY(sa.Integer()),
        nullable=False,
        server_default="{}",
    ),
    sa.Column("settlement_account", sa.Text(), nullable=False, server_default=""),
    sa.Column("phone_token", sa.Text(), nullable=True),
)


def upgrade() -> None:
    for column in _MERCHANT_COLUMNS:
        op.add_column("merchants", column)
    for column in _MERCHANT_COLUMNS:
        if column.server_default is not None:
            op.alter_column("merchants", column.name, server_default=None)
    op.create_check_constraint(
        "ck_merchants_category", "merchants", "category ~ '^[a-z][a-z0-9_]{0,39}$'"
    )
    op.create_check_constraint(
        "ck_merchants_channel", "merchants", "channel IN ('IN_PERSON', 'ONLINE')"
    )
    op.create_check_constraint(
        "ck_merchants_settlement_account", "merchants", "char_length(settlement_account) <= 64"
    )
    op.create_check_constraint(
        "ck_merchants_phone_token", "merchants", "phone_token ~ '^[0-9a-f]{64}$'"
    )
    op.create_table(
        "aliases",
        sa.Column("alias_kind", sa.Text(), nullable=False),
        sa.Column("alias_key", sa.Text(), nullable=False),
        sa.Column("party_kind", sa.Text(), nullable=False),
        sa.Column("party_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("alias_kind", "alias_key", name="pk_aliases"),
        sa.CheckConstraint(
            "alias_kind IN ('CITIZEN_ID', 'TAX_ID', 'PHONE')", name="ck_aliases_alias_kind"
        ),
        sa.CheckConstraint("party_kind IN ('CITIZEN', 'MERCHANT')", name="ck_aliases_party_kind"),
    )
    op.execute(
        "INSERT INTO aliases (alias_kind, alias_key, party_kind, party_id)"
        " SELECT 'CITIZEN_ID', citizen_token, 'CITIZEN', citizen_id FROM citizens"
    )
    op.execute(
        "INSERT INTO aliases (alias_kind, alias_key, party_kind, party_id)"
        " SELECT 'TAX_ID', tax_id, 'MERCHANT', merchant_id FROM merchants"
    )


def downgrade() -> None:
    op.drop_table("aliases")
    for name in ("phone_token", "settlement_account", "channel", "category"):
        op.drop_constraint(f"ck_merchants_{name}", "merchants", type_="check")
    for column in reversed(_MERCHANT_COLUMNS):
        op.drop_column("merchants", column.name)
