"""The identity database: participants, citizens and merchants.

Citizens are stored by the keyed token of their citizen ID only; no column holds
the 13-digit number. Enumerations are stored as their proto value names without
prefix, constrained by CHECKs so a bad write fails loudly.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Table,
    Text,
    func,
)

from openloop_runtime.db import service_metadata

metadata = service_metadata()

participants = Table(
    "participants",
    metadata,
    Column("participant_id", Text, primary_key=True),
    Column("request_id", Text, nullable=False, unique=True),
    Column("display_name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("participant_id ~ '^[a-z0-9][a-z0-9-]{0,62}$'", name="participant_id"),
    CheckConstraint("role IN ('TREASURY', 'BANK', 'E_WALLET', 'OPERATOR')", name="role"),
    CheckConstraint("state IN ('ACTIVE', 'SUSPENDED', 'CLOSED')", name="state"),
)

citizens = Table(
    "citizens",
    metadata,
    Column("citizen_id", Text, primary_key=True),
    Column("request_id", Text, nullable=False, unique=True),
    Column("citizen_token", Text, nullable=False, unique=True),
    Column("home_district_code", Text, nullable=False),
    Column(
        "hosting_participant_id",
        Text,
        ForeignKey("participants.participant_id"),
        nullable=False,
    ),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("citizen_token ~ '^[0-9a-f]{64}$'", name="citizen_token"),
    CheckConstraint("home_district_code ~ '^[0-9]{4}$'", name="home_district_code"),
)

merchants = Table(
    "merchants",
    metadata,
    Column("merchant_id", Text, primary_key=True),
    Column("request_id", Text, nullable=False, unique=True),
    Column("tax_id", Text, nullable=False, unique=True),
    Column("display_name", Text, nullable=False),
    Column("district_code", Text, nullable=False),
    Column("size_class", Text, nullable=False),
    Column(
        "hosting_participant_id",
        Text,
        ForeignKey("participants.participant_id"),
        nullable=False,
    ),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("tax_id ~ '^0[0-9]{12}$'", name="tax_id"),
    CheckConstraint("district_code ~ '^[0-9]{4}$'", name="district_code"),
    CheckConstraint("size_class IN ('SMALL_SHOP', 'LARGE_CHAIN')", name="size_class"),
    CheckConstraint("char_length(display_name) BETWEEN 1 AND 200", name="display_name"),
)
