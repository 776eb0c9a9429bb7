"""The identity database: participants, citizens and merchants.

Citizens are stored by the keyed token of their citizen ID only; no column holds
the 13-digit number. Enumerations are stored as their proto value names without
prefix, constrained by CHECKs so a bad write fails loudly.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
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

participants = Table(
    "participants",
    metadata,
    Column("participant_id", Text, primary_key=True),
    Column("request_id", Text, nullable=False, unique=True),
    Column("display_name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("capabilities", ARRAY(Text), nullable=False),
    CheckConstraint("participant_id ~ '^[a-z0-9][a-z0-9-]{0,62}$'", name="participant_id"),
    CheckConstraint("role IN ('TREASURY', 'BANK', 'E_WALLET', 'OPERATOR')", name="role"),
    CheckConstraint("capabilities <@ ARRAY['PAYER_BANK', 'ACQUIRER']::text[]", name="capabilities"),
    CheckConstraint("state IN ('ACTIVE', 'SUSPENDED', 'CLOSED')", name="state"),
)

participant_credentials = Table(
    "participant_credentials",
    metadata,
    Column("credential_id", Text, primary_key=True),
    Column("participant_id", Text, ForeignKey("participants.participant_id"), nullable=False),
    Column("request_id", Text, nullable=False, unique=True),
    Column("kind", Text, nullable=False),
    Column("certificate_sha256", Text, nullable=True, unique=True),
    Column("certificate_subject", Text, nullable=True),
    Column("certificate_san_uri", Text, nullable=True),
    Column("key_id", Text, nullable=True),
    Column("public_jwk", Text, nullable=True),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("revoke_time", DateTime(timezone=True), nullable=True),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("participant_id", "key_id", name="uq_participant_credentials_key_id"),
    CheckConstraint("kind IN ('CLIENT_CERTIFICATE', 'ASSERTION_KEY')", name="kind"),
    CheckConstraint(
        "(kind = 'CLIENT_CERTIFICATE') = (certificate_sha256 IS NOT NULL)"
        " AND (kind = 'ASSERTION_KEY') = (key_id IS NOT NULL AND public_jwk IS NOT NULL)",
        name="material",
    ),
    CheckConstraint("certificate_sha256 ~ '^[0-9a-f]{64}$'", name="certificate_sha256"),
    CheckConstraint("not_before < not_after", name="validity"),
)
"""Client certificates and assertion keys; several may be valid at once (rotation)."""

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
    Column("personal_data", LargeBinary, nullable=True),
    Column("identity_assurance_level", Text, nullable=True),
    Column("assertion_digest", Text, nullable=True),
    Column("income_within_limit", Boolean, nullable=False),
    Column("deposits_within_limit", Boolean, nullable=False),
    Column("excluded", Boolean, nullable=False),
    Column("earlier_phase_recipient", Boolean, nullable=False),
    Column("guardian_consent_reference", Text, nullable=True),
    Column("guardian_consent_time", DateTime(timezone=True), nullable=True),
    Column("personal_data_kek", Text, nullable=True, index=True),
    Column("erase_time", DateTime(timezone=True), nullable=True),
    Column("wallet_generation", Integer, nullable=False, server_default="1"),
    Column("wallet_move_id", Text, nullable=True),
    CheckConstraint("citizen_token ~ '^[0-9a-f]{64}$'", name="citizen_token"),
    CheckConstraint("wallet_generation >= 1", name="wallet_generation"),
    CheckConstraint("home_district_code ~ '^[0-9]{4}$'", name="home_district_code"),
    CheckConstraint("assertion_digest ~ '^[0-9a-f]{64}$'", name="assertion_digest"),
    CheckConstraint(
        "(guardian_consent_reference IS NULL) = (guardian_consent_time IS NULL)",
        name="guardian_consent",
    ),
)
"""``personal_data`` is the sealed envelope (:mod:`openloop_identity.protection.envelope`)
of name, birth date and address, bound to the row's resource name; NULL for citizens
enrolled before assertions were required, and shredded (its data key erased) on erasure.
``personal_data_kek`` names the key-encryption key its data key is wrapped under, so key
rotation finds what to re-wrap; ``erase_time`` is set when the data key was shredded.
``wallet_generation`` names the ledger account holding the wallet
(:mod:`openloop_identity.domain.wallets`); ``wallet_move_id`` is set while the wallet moves,
which freezes it.
``assertion_digest`` is the SHA-256 of the enrolling token, so a retry of the same request
is recognised without spending a second token."""

assertion_replays = Table(
    "assertion_replays",
    metadata,
    Column("issuer", Text, nullable=False),
    Column("jti", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("binding", Text, nullable=False, server_default=""),
    PrimaryKeyConstraint("issuer", "jti", name="pk_assertion_replays"),
    Index("ix_assertion_replays_expires_at", "expires_at"),
)
"""Identity assertions already used, until they expire (the replay guard), with the request
they were spent for (``binding``, empty: none): that request, retried, may use it again."""

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

wallet_moves = Table(
    "wallet_moves",
    metadata,
    Column("citizen_id", Text, ForeignKey("citizens.citizen_id"), primary_key=True),
    Column("wallet_move_id", Text, primary_key=True),
    Column("from_participant_id", Text, ForeignKey("participants.participant_id"), nullable=False),
    Column("to_participant_id", Text, ForeignKey("participants.participant_id"), nullable=False),
    Column("from_generation", Integer, nullable=False),
    Column("assertion_digest", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("complete_time", DateTime(timezone=True), nullable=True),
    CheckConstraint("state IN ('IN_PROGRESS', 'COMPLETED')", name="state"),
    CheckConstraint("from_participant_id <> to_participant_id", name="moves_elsewhere"),
    CheckConstraint("assertion_digest ~ '^[0-9a-f]{64}$'", name="assertion_digest"),
    CheckConstraint("(state = 'COMPLETED') = (complete_time IS NOT NULL)", name="complete_time"),
)
"""Every move of a citizen's wallet, kept for good: with the wallet generation before it, the
accounts on both sides are named (:mod:`openloop_identity.domain.wallets`). The key is the
requester's id for the move, so a retried request finds its move; ``assertion_digest`` (SHA-256
of the citizen's token) tells a retry from a different request under the same id."""

Index(
    "wallet_moves_one_in_progress",
    wallet_moves.c.citizen_id,
    unique=True,
    postgresql_where=wallet_moves.c.state == "IN_PROGRESS",
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("event_id", BigInteger, Identity(always=True), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("resource", Text, nullable=False),
    Column("acting_participant_id", Text, nullable=True),
    Column("request_id", Text, nullable=True),
    Column("details", JSONB, nullable=False),
    CheckConstraint("actor LIKE 'operator:%'", name="actor"),
    CheckConstraint("char_length(resource) > 0", name="resource"),
    Index("ix_audit_events_resource", "resource", "event_id"),
    Index("ix_audit_events_action", "action", "event_id"),
)
"""Operators' changes, and their reads of personal data: who (``actor``, ``role``), what
(``action``), to which resource, for which bank (``acting_participant_id``) and under which
request id. Written in the transaction of the change (:mod:`openloop_identity.store.audit`)
and never updated. ``details`` holds resource names and counts, never personal data. Nothing
references the participants or citizens, so a trail outlives what it names."""
