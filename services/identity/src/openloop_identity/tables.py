"""The identity database: participants, citizens and merchants.

Citizens are stored by the keyed token of their citizen ID only; no column holds
the 13-digit number. Enumerations are stored as their proto value names without
prefix, constrained by CHECKs so a bad write fails loudly.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY

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
    Column("category", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("vat_registered", Boolean, nullable=False),
    Column("corporate_income_tax", Boolean, nullable=False),
    Column("personal_income_tax_s40", Boolean, nullable=False),
    Column("tax_years_filed", ARRAY(Integer), nullable=False),
    Column("settlement_account", Text, nullable=False),
    Column("phone_token", Text, nullable=True),
    CheckConstraint("size_class IN ('SMALL_SHOP', 'LARGE_CHAIN')", name="size_class"),
    CheckConstraint("char_length(display_name) BETWEEN 1 AND 200", name="display_name"),
    CheckConstraint("category ~ '^[a-z][a-z0-9_]{0,39}$'", name="category"),
    CheckConstraint("channel IN ('IN_PERSON', 'ONLINE')", name="channel"),
    CheckConstraint("char_length(settlement_account) <= 64", name="settlement_account"),
    CheckConstraint("phone_token ~ '^[0-9a-f]{64}$'", name="phone_token"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("alias_kind", Text, nullable=False),
    Column("alias_key", Text, nullable=False),
    Column("party_kind", Text, nullable=False),
    Column("party_id", Text, nullable=False),
    PrimaryKeyConstraint("alias_kind", "alias_key", name="pk_aliases"),
    CheckConstraint("alias_kind IN ('CITIZEN_ID', 'TAX_ID', 'PHONE')", name="alias_kind"),
    CheckConstraint("party_kind IN ('CITIZEN', 'MERCHANT')", name="party_kind"),
)
"""The alias directory: each identifier names exactly one party (the primary key makes a
second claim fail). ``alias_key`` is the citizen-ID token for CITIZEN_ID, the keyed phone
token for PHONE, and the juristic tax ID itself for TAX_ID (a company's public number)."""
