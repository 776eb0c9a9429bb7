"""Programs as versioned data; rule sets name their program; activations per program with an
effective time, kind and idempotency key; the operators' audit trail; recorded decisions.

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

_DEFAULT_PROGRAM = "digital-wallet"
"""Every rule set stored before programs were data governed the digital-wallet program."""


def upgrade() -> None:
    op.create_table(
        "programs",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("program_id", "version", name="pk_programs"),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="ck_programs_sha256"),
    )
    backfilled = (
        ("rule_sets", sa.Column("program_id", sa.Text(), nullable=False,
                                server_default=_DEFAULT_PROGRAM)),
        ("rule_sets", sa.Column("program_version", sa.Text(), nullable=True)),
        ("rule_sets", sa.Column("published_by", sa.Text(), nullable=False,
                                server_default="system:bootstrap")),
        ("rule_sets", sa.Column("publish_reason", sa.Text(), nullable=False,
                                server_default="stored before publishing was audited")),
        ("activations", sa.Column("program_id", sa.Text(), nullable=False,
                                  server_default=_DEFAULT_PROGRAM)),
        ("activations", sa.Column("kind", sa.Text(), nullable=False, server_default="ACTIVATE")),
        ("activations", sa.Column("request_id", sa.Text(), nullable=True)),
    )  # fmt: skip
    for table, column in backfilled:
        op.add_column(table, column)
        if column.server_default is not None:
            op.alter_column(table, column.name, server_default=None)
    op.add_column("activations", sa.Column("effective_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE activations SET effective_at = activated_at")
    op.alter_column("activations", "effective_at", nullable=False)
    op.create_check_constraint(
        "ck_activations_kind", "activations", "kind IN ('ACTIVATE', 'ROLLBACK', 'BOOTSTRAP')"
    )
    op.create_unique_constraint("uq_activations_request_id", "activations", ["request_id"])
    op.create_index("ix_activations_program_id", "activations", ["program_id", "effective_at"])
    op.create_index("ix_rule_sets_program_id", "rule_sets", ["program_id", "created_at"])
    op.create_table(
        "audit_events",
        sa.Column("event_id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("rule_set_version", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_audit_events"),
        sa.CheckConstraint("char_length(reason) > 0", name="ck_audit_events_reason"),
    )
    op.create_table(
        "recorded_decisions",
        sa.Column("decision_id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("rule_set_version", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("violated_rule_ids", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("payment_facts", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("decision_id", name="pk_recorded_decisions"),
    )
    op.create_index(
        "ix_recorded_decisions_program_id", "recorded_decisions", ["program_id", "decision_id"]
    )


def downgrade() -> None:
    op.drop_table("recorded_decisions")
    op.drop_table("audit_events")
    op.drop_index("ix_rule_sets_program_id", "rule_sets")
    op.drop_index("ix_activations_program_id", "activations")
    op.drop_constraint("uq_activations_request_id", "activations")
    op.drop_constraint("ck_activations_kind", "activations")
    for column in ("program_id", "kind", "request_id", "effective_at"):
        op.drop_column("activations", column)
    for column in ("program_id", "program_version", "published_by", "publish_reason"):
        op.drop_column("rule_sets", column)
    op.drop_table("programs")
