"""The rules database: programs and rule sets (immutable, by version), the activation
history, the audit trail of operators' actions and a bounded sample of recent decisions.

Rule sets and programs never change once stored, and activations are only ever added, so
any past decision can be explained from the version it names, and any moment's rule set
found again from the history.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from openloop_runtime.db import service_metadata

metadata = service_metadata()

programs = Table(
    "programs",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("document", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("program_id", "version", name="pk_programs"),
    CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256"),
)

rule_sets = Table(
    "rule_sets",
    metadata,
    Column("version", Text, primary_key=True),
    Column("document", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("program_id", Text, nullable=False),
    Column("program_version", Text, nullable=True),
    Column("published_by", Text, nullable=False),
    Column("publish_reason", Text, nullable=False),
    CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256"),
    Index("ix_rule_sets_program_id", "program_id", "created_at"),
)

activations = Table(
    "activations",
    metadata,
    Column("activation_id", BigInteger, Identity(always=True), primary_key=True),
    Column("version", Text, ForeignKey("rule_sets.version"), nullable=False),
    Column("activated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("activated_by", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("program_id", Text, nullable=False),
    Column("effective_at", DateTime(timezone=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("request_id", Text, nullable=True),
    CheckConstraint("kind IN ('ACTIVATE', 'ROLLBACK', 'BOOTSTRAP')", name="kind"),
    UniqueConstraint("request_id", name="uq_activations_request_id"),
    Index("ix_activations_program_id", "program_id", "effective_at"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("event_id", BigInteger, Identity(always=True), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("program_id", Text, nullable=False),
    Column("rule_set_version", Text, nullable=True),
    Column("reason", Text, nullable=False),
    Column("details", JSONB, nullable=False),
    CheckConstraint("char_length(reason) > 0", name="reason"),
)

recorded_decisions = Table(
    "recorded_decisions",
    metadata,
    Column("decision_id", BigInteger, Identity(always=True), primary_key=True),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("program_id", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("rule_set_version", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("violated_rule_ids", ARRAY(Text), nullable=False),
    Column("payment_facts", LargeBinary, nullable=False),
    Index("ix_recorded_decisions_program_id", "program_id", "decision_id"),
)
