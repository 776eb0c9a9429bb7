"""The journal remembers its last batch's time, so create_time never goes back.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 00:00:00

Each batch takes its time from the clock of the replica that applies it. Clocks step
back (NTP) and replicas disagree, so a later batch could carry an earlier create_time
than the one before it: time order and journal order would part, and a pending
transfer's timeout would be judged against a clock that went backwards. Under the
journal's row lock a batch now reads ``last_time`` and takes the later of it and its
clock (:func:`openloop_ledger.writes.batch_time`), as TigerBeetle's timestamps never
decrease. Existing journals start from their newest transfer's time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("journal", sa.Column("last_time", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE journal SET last_time = (SELECT max(create_time) FROM transfers)")


def downgrade() -> None:
    op.drop_column("journal", "last_time")
