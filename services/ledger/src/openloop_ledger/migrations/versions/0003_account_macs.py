"""Account MACs: a keyed hash over each account's immutable columns.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 00:00:00

The ledger writes ``accounts.mac`` when it creates an account
(:mod:`openloop_ledger.account_mac`); the verifier recomputes it. The migration
cannot compute MACs (it does not hold the leaf key), so accounts created before it
have none, and the verifier names them: no deployment held accounts before this
revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("mac", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("accounts", "mac")
