"""The identity service's records, independent of protobuf and of the database.

Enumerations hold the proto value names without their prefix ("BANK", not
"PARTICIPANT_ROLE_BANK"), which is also how they are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from openloop_identity.domain.wallets import FIRST_GENERATION, citizen_wallet_account


class ParticipantRole(StrEnum):
    TREASURY = "TREASURY"
    BANK = "BANK"
    E_WALLET = "E_WALLET"
    OPERATOR = "OPERATOR"


WALLET_HOSTING_ROLES = frozenset({ParticipantRole.BANK, ParticipantRole.E_WALLET})
"""Only banks and e-wallet providers hold citizens' and merchants' wallets."""


class Capability(StrEnum):
    """What a wallet-hosting participant does in payments."""

    PAYER_BANK = "PAYER_BANK"
    """Hosts citizens' wallets and pays on their behalf."""
    ACQUIRER = "ACQUIRER"
    """Hosts merchants' wallets and is paid for them."""


ALL_CAPABILITIES = frozenset(Capability)


class ParticipantState(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    CLOSED = "CLOSED"


class MerchantSizeClass(StrEnum):
    SMALL_SHOP = "SMALL_SHOP"
    LARGE_CHAIN = "LARGE_CHAIN"


class PartyKind(StrEnum):
    CITIZEN = "CITIZEN"
    MERCHANT = "MERCHANT"


class MerchantChannel(StrEnum):
    IN_PERSON = "IN_PERSON"
    ONLINE = "ONLINE"


class AliasKind(StrEnum):
    """What an alias in the directory is: each kind is unique across all parties."""

    CITIZEN_ID = "CITIZEN_ID"
    TAX_ID = "TAX_ID"
    PHONE = "PHONE"


@dataclass(frozen=True)
class TaxStatus:
    """A merchant's place in the tax system, which decides cash-out (rule R7)."""

    vat_registered: bool = False
    corporate_income_tax: bool = False
    personal_income_tax_s40: bool = False
    years_filed: tuple[int, ...] = ()
    """Sorted, no duplicates."""


@dataclass(frozen=True)
class Alias:
    """An identifier that names one party. ``key`` is what the directory stores: the keyed
    token of a citizen ID or phone number, or a company's tax ID as it is."""

    kind: AliasKind
    key: str


@dataclass(frozen=True)
class ResolvedParty:
    kind: PartyKind
    party_id: str
    hosting_participant_id: str


@dataclass(frozen=True)
class NewParticipant:
    request_id: str
    participant_id: str
    display_name: str
    role: ParticipantRole
    capabilities: frozenset[Capability] = frozenset()


@dataclass(frozen=True)
class Participant:
    participant_id: str
    display_name: str
    role: ParticipantRole
    state: ParticipantState
    create_time: datetime
    capabilities: frozenset[Capability] = frozenset()


@dataclass(frozen=True)
class Eligibility:
    """What the hosting participant attested about the citizen's eligibility at enrolment."""

    income_within_limit: bool = False
    deposits_within_limit: bool = False
    excluded: bool = False
    earlier_phase_recipient: bool = False


@dataclass(frozen=True)
class GuardianConsent:
    """A guardian's consent for a minor, by the participant's opaque reference to it."""

    reference: str
    time: datetime


@dataclass(frozen=True)
class PersonalData:
    """Name, birth date and address: only ever stored sealed, never logged."""

    full_name: str = field(repr=False)
    birth_date: date = field(repr=False)
    address: str = field(repr=False)

    def sealable(self) -> dict[str, str]:
        return {
            "full_name": self.full_name,
            "birth_date": self.birth_date.isoformat(),
            "address": self.address,
        }


class CredentialKind(StrEnum):
    CLIENT_CERTIFICATE = "CLIENT_CERTIFICATE"
    ASSERTION_KEY = "ASSERTION_KEY"


@dataclass(frozen=True)
class CredentialMaterial:
    """What identifies a credential: a certificate's fingerprint, subject and URI SAN, or an
    assertion key's id and public JWK. Unused fields are empty."""

    kind: CredentialKind
    certificate_sha256: str = ""
    certificate_subject: str = ""
    certificate_san_uri: str = ""
    key_id: str = ""
    public_jwk: str = ""


@dataclass(frozen=True)
class NewCredential:
    request_id: str
    participant_id: str
    material: CredentialMaterial
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class ParticipantCredential:
    credential_id: str
    participant_id: str
    material: CredentialMaterial
    not_before: datetime
    not_after: datetime
    revoke_time: datetime | None
    create_time: datetime


@dataclass(frozen=True)
class NewCitizen:
    """A citizen to enrol. Holds the keyed token of the citizen ID, never the ID itself; the
    assertion is verified, and the personal data sealed, inside the enrolling transaction."""

    request_id: str
    citizen_token: str
    home_district_code: str
    hosting_participant_id: str
    identity_assertion: str = field(repr=False)
    assertion_digest: str
    personal_data: PersonalData
    eligibility: Eligibility
    guardian_consent: GuardianConsent | None
    erase_time: datetime | None = None
    """Set once the personal data was crypto-shredded."""


@dataclass(frozen=True)
class Citizen:
    citizen_id: str
    """The platform's opaque id (``citizens/{citizen_id}``), not the 13-digit citizen ID."""
    home_district_code: str
    hosting_participant_id: str
    create_time: datetime
    identity_assurance_level: str | None
    """"2.3" and so on; None for citizens enrolled before assertions were required."""
    eligibility: Eligibility
    guardian_consent: GuardianConsent | None
    erase_time: datetime | None = None
    """Set once the personal data was crypto-shredded."""
    wallet_generation: int = FIRST_GENERATION
    wallet_move_id: str | None = None
    """Set while the wallet moves to another participant: it can neither pay nor move again."""

    @property
    def wallet_account(self) -> str:
        return citizen_wallet_account(self.citizen_id, self.wallet_generation)


@dataclass(frozen=True)
class MerchantProfile:
    """What a merchant registers, as the store keeps it (the phone only as its token)."""

    tax_id: str
    display_name: str
    district_code: str
    size_class: MerchantSizeClass
    hosting_participant_id: str
    category: str
    channel: MerchantChannel
    tax_status: TaxStatus
    settlement_account: str
    phone_token: str | None


@dataclass(frozen=True)
class NewMerchant:
    request_id: str
    profile: MerchantProfile


@dataclass(frozen=True)
class Merchant:
    merchant_id: str
    profile: MerchantProfile
    create_time: datetime


@dataclass(frozen=True)
class PartyFacts:
    """What the rules may know about one side of a payment: no personal data."""

    kind: PartyKind
    party_id: str
    hosting_participant_id: str
    district_code: str
    size_class: MerchantSizeClass | None
    age_years: int = 0
    identity_verified: bool = False
    authentication_level: str = ""
    category: str = ""
    sells_in_person: bool = False
    tax_registered: bool = False
    tax_years_filed: tuple[int, ...] = ()


@dataclass(frozen=True)
class PaymentParties:
    payer: PartyFacts
    payee: PartyFacts
    payer_wallet_account: str
    payee_wallet_account: str


class WalletMoveState(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


@dataclass(frozen=True)
class WalletMove:
    """A citizen's wallet moving from one participant to another (see ``tables.wallet_moves``)."""

    citizen_id: str
    wallet_move_id: str
    from_participant_id: str
    to_participant_id: str
    from_generation: int
    state: WalletMoveState
    create_time: datetime
    complete_time: datetime | None

    @property
    def from_account(self) -> str:
        return citizen_wallet_account(self.citizen_id, self.from_generation)

    @property
    def to_account(self) -> str:
        return citizen_wallet_account(self.citizen_id, self.from_generation + 1)


@dataclass(frozen=True)
class NewWalletMove:
    """A request to move a citizen's wallet to ``to_participant_id``."""

    citizen_id: str
    wallet_move_id: str
    to_participant_id: str
    identity_assertion: str
    assertion_digest: str
