"""The rules database: every rule-set version ever stored, and the history of activations.

Rule sets are immutable once stored (a new version is a new row), so any past
decision can be explained from the version it names. The active version is the
one named by the latest activation.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Table,
    Text,
    func,
)

from openloop_runtime.db import service_metadata

metadata = service_metadata()

rule_sets = Table(
    "rule_sets",
    metadata,
    Column("version", Text, primary_key=True),
    Column("document", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256"),
)

activations = Table(
    "activations",
    metadata,
    Column("activation_id", BigInteger, Identity(always=True), primary_key=True),
    Column("version", Text, ForeignKey("rule_sets.version"), nullable=False),
    Column("activated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("activated_by", Text, nullable=False),
    Column("reason", Text, nullable=False),
)
