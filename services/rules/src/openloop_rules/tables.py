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
    MetaData,
    Table,
    Text,
    func,
)

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)

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
