"""Settlement cycles: every obligation belongs to one, positions are kept per cycle too.

Every obligation recorded before this migration goes into cycle 1, which stays OPEN: nothing
was ever settled, so the operator, not a deployment, decides where the first cut falls.
Cycle 1's positions are the lifetime positions as they stand, so the sum over cycles equals
the lifetime position from the first moment, and they are checked against the obligations
(the migration stops rather than carry a disagreement into a settlement).

``obligations.cycle_id`` is added with a default of 1, which PostgreSQL stores in the catalog
instead of rewriting the table, and the default is then dropped: a replica still running the
previous version, which does not stamp a cycle, fails its insert (the gateway keeps the
payment PENDING and retries) rather than add to cycle 1 after it closed. Both tables are
locked while the rows are copied, so no recording slips between the copy and the check.

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01 00:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DISAGREEMENT = """
WITH moved AS (
    SELECT debit_participant_id AS participant_id, -amount AS delta, record_time
    FROM obligations WHERE inter_participant
    UNION ALL
    SELECT credit_participant_id, amount, record_time
    FROM obligations WHERE inter_participant
), derived AS (
    SELECT participant_id, sum(delta) AS net_position, count(*) AS transfer_count
    FROM moved GROUP BY participant_id
)
SELECT count(*) FROM derived
FULL JOIN positions USING (participant_id)
WHERE derived.net_position IS DISTINCT FROM positions.net_position
   OR derived.transfer_count IS DISTINCT FROM positions.transfer_count
"""


def upgrade() -> None:
    op.execute("LOCK TABLE obligations, positions IN EXCLUSIVE MODE")
    disagreeing = op.get_bind().scalar(sa.text(_DISAGREEMENT))
    if disagreeing:
        raise RuntimeError(
            f"{disagreeing} positions disagree with the obligations recorded; they cannot be "
            "put into a settlement cycle until the difference is explained"
        )
    op.create_table(
        "settlement_cycles",
        sa.Column("cycle_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column(
            "open_time", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("close_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settle_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_request_id", sa.String(64), nullable=True),
        sa.Column("settle_request_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("cycle_id", name=op.f("pk_settlement_cycles")),
        sa.UniqueConstraint("close_request_id", name=op.f("uq_settlement_cycles_close_request_id")),
        sa.UniqueConstraint(
            "settle_request_id", name=op.f("uq_settlement_cycles_settle_request_id")
        ),
        sa.CheckConstraint(
            "state IN ('OPEN', 'CLOSED', 'SETTLED')", name=op.f("ck_settlement_cycles_state_known")
        ),
        sa.CheckConstraint("cycle_id > 0", name=op.f("ck_settlement_cycles_cycle_id_positive")),
        sa.CheckConstraint(
            "(state = 'OPEN') = (close_time IS NULL AND close_request_id IS NULL)",
            name=op.f("ck_settlement_cycles_closed"),
        ),
        sa.CheckConstraint(
            "(state = 'SETTLED') = (settle_time IS NOT NULL AND settle_request_id IS NOT NULL)",
            name=op.f("ck_settlement_cycles_settled"),
        ),
    )
    op.create_index(
        "settlement_cycles_one_open",
        "settlement_cycles",
        ["state"],
        unique=True,
        postgresql_where=sa.text("state = 'OPEN'"),
    )
    # Cycle 1 opened when the first obligation was recorded (or now, on an empty database).
    op.execute(
        "INSERT INTO settlement_cycles (cycle_id, state, open_time) "
        "SELECT 1, 'OPEN', coalesce(min(record_time), now()) FROM obligations"
    )

    op.add_column(
        "obligations",
        sa.Column("cycle_id", sa.BigInteger(), nullable=False, server_default=sa.text("1")),
    )
    op.alter_column("obligations", "cycle_id", server_default=None)
    op.create_foreign_key(
        op.f("fk_obligations_cycle_id_settlement_cycles"),
        "obligations",
        "settlement_cycles",
        ["cycle_id"],
        ["cycle_id"],
    )
    op.create_index(
        "ix_obligations_cycle_id_transfer_id", "obligations", ["cycle_id", "transfer_id"]
    )
    op.create_index(
        "ix_obligations_debit_participant_id_cycle_id",
        "obligations",
        ["debit_participant_id", "cycle_id", "transfer_id"],
    )
    op.create_index(
        "ix_obligations_credit_participant_id_cycle_id",
        "obligations",
        ["credit_participant_id", "cycle_id", "transfer_id"],
    )

    op.create_table(
        "cycle_positions",
        sa.Column("cycle_id", sa.BigInteger(), nullable=False),
        sa.Column("participant_id", sa.String(63), nullable=False),
        sa.Column("net_position", sa.BigInteger(), nullable=False),
        sa.Column("transfer_count", sa.BigInteger(), nullable=False),
        sa.Column(
            "update_time",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("cycle_id", "participant_id", name=op.f("pk_cycle_positions")),
        sa.ForeignKeyConstraint(
            ["cycle_id"],
            ["settlement_cycles.cycle_id"],
            name=op.f("fk_cycle_positions_cycle_id_settlement_cycles"),
        ),
        sa.CheckConstraint(
            "transfer_count > 0", name=op.f("ck_cycle_positions_transfer_count_positive")
        ),
    )
    op.create_index(
        "ix_cycle_positions_participant_id", "cycle_positions", ["participant_id", "cycle_id"]
    )
    op.execute(
        "INSERT INTO cycle_positions "
        "(cycle_id, participant_id, net_position, transfer_count, update_time) "
        "SELECT 1, participant_id, net_position, transfer_count, update_time FROM positions"
    )


def downgrade() -> None:
    # Lifetime positions and obligations are untouched by the upgrade, so going back loses
    # only the cycles: which obligations were cut off and settled when.
    op.drop_table("cycle_positions")
    op.drop_index("ix_obligations_credit_participant_id_cycle_id", table_name="obligations")
    op.drop_index("ix_obligations_debit_participant_id_cycle_id", table_name="obligations")
    op.drop_index("ix_obligations_cycle_id_transfer_id", table_name="obligations")
    op.drop_constraint(
        op.f("fk_obligations_cycle_id_settlement_cycles"), "obligations", type_="foreignkey"
    )
    op.drop_column("obligations", "cycle_id")
    op.drop_index("settlement_cycles_one_open", table_name="settlement_cycles")
    op.drop_table("settlement_cycles")
