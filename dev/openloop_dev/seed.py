"""The demo program: a treasury, two banks, a funded citizen and three merchants.

Seeding talks to the internal services directly, as the platform operator would
when onboarding participants: identity's calls carry the dev operator's token
(``operators.py``), since only an operator may create participants, register their
credentials, enrol citizens and create merchants. Every step is idempotent (fixed request
ids, ledger ids and transfer ids), so ``make up`` can seed the same database again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from google.protobuf.timestamp_pb2 import Timestamp

from openloop.common.v1 import party_pb2
from openloop.identity.v1 import resources_pb2 as identity_resources
from openloop.identity.v1 import service_pb2 as identity_pb2
from openloop.identity.v1 import service_pb2_grpc as identity_grpc
from openloop.ledger.v1 import resources_pb2 as ledger_resources
from openloop.ledger.v1 import service_pb2 as ledger_pb2
from openloop.ledger.v1 import service_pb2_grpc as ledger_grpc
from openloop.settlement.v1 import service_pb2 as settlement_pb2
from openloop.settlement.v1 import service_pb2_grpc as settlement_grpc
from openloop_dev.identity_provider import bank_signer, enrolment_assertion
from openloop_dev.mesh import MeshLayout
from openloop_dev.operators import dev_operator_channel
from openloop_gateway.accounts import (
    TREASURY_FUNDING_ACCOUNT,
    AccountCode,
    TransferCode,
    wallet_account_id,
)
from openloop_runtime.money import LEDGER_THB, thb

ENTITLEMENT_SATANG = 10_000_00
"""10,000 THB, the program's one-time entitlement."""
HOME_DISTRICT = "1001"  # Phra Nakhon, Bangkok
OTHER_DISTRICT = "5001"  # Mueang Chiang Mai
DEMO_CITIZEN_ID = "1345951597671"  # valid check digit (domain brief)
DEMO_FULL_NAME = "Somchai Demo-Jaidee"
DEMO_BIRTH_DATE = "1990-04-01"
DEMO_ADDRESS = "99/1 Soi Demo, Phra Nakhon, Bangkok"
"""The demo citizen's personal data: sealed by identity, and never in a log or a span."""

_Role = identity_resources.ParticipantRole
_Size = party_pb2.MerchantSizeClass
_CreateResult = ledger_resources.CreateAccountResult
_TransferResult = ledger_resources.CreateTransferResult


@dataclass(frozen=True)
class DemoProgram:
    citizen: str
    small_shop: str
    """Small shop in the citizen's district, hosted by bank B: round-1 payments are allowed."""
    far_shop: str
    """Small shop in another district: the district rule (R1) denies payments."""
    large_chain: str
    """Large chain in the citizen's district: the small-shop rule (R3) denies payments."""
    online_shop: str = ""
    """Small shop in the citizen's district that sells online only: round-1 payments are not
    face to face, which R2 denies. (Empty in the saved program of a mesh seeded before it
    existed, until ``make up`` seeds it again.)"""
    payer_bank: str = "bank-a"
    payee_bank: str = "bank-b"
    citizen_id: str = DEMO_CITIZEN_ID
    """The demo citizen's 13-digit ID: bank A knows it (it enrolled them) and signs the
    citizen's payment authorisations with it."""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Operator:
    """The platform operator's view: the internal services, called directly (identity with
    the dev operator's token on every call; settlement without, as the seed only records
    transfers, which the gateway does without a token too)."""

    identity: identity_grpc.IdentityServiceStub
    ledger: ledger_grpc.LedgerServiceStub
    settlement: settlement_grpc.SettlementServiceStub


@contextlib.asynccontextmanager
async def operator(layout: MeshLayout, subject: str = "dev-seed") -> AsyncIterator[Operator]:
    async with (
        dev_operator_channel(
            layout.workdir, "identity", layout.target("identity"), subject
        ) as identity_channel,
        grpc.aio.insecure_channel(layout.target("ledger")) as ledger_channel,
        grpc.aio.insecure_channel(layout.target("settlement")) as settlement_channel,
    ):
        yield Operator(
            identity_grpc.IdentityServiceStub(identity_channel),
            ledger_grpc.LedgerServiceStub(ledger_channel),
            settlement_grpc.SettlementServiceStub(settlement_channel),
        )


async def open_accounts(op: Operator, accounts: Sequence[ledger_resources.Account]) -> None:
    """Create ledger accounts; an account that already exists as asked is fine."""
    reply = await op.ledger.CreateAccounts(ledger_pb2.CreateAccountsRequest(accounts=accounts))
    for account, result in zip(accounts, reply.results, strict=True):
        if result not in (
            _CreateResult.CREATE_ACCOUNT_RESULT_OK,
            _CreateResult.CREATE_ACCOUNT_RESULT_EXISTS,
        ):
            raise RuntimeError(f"account {account.id}: {_CreateResult.Name(result)}")


async def fund_entitlements(op: Operator, citizens: Sequence[str], host: str) -> None:
    """Open each citizen's wallet at ``host`` and pay it the entitlement from the treasury,
    recording the treasury -> host obligation in settlement. Idempotent by transfer id."""
    await open_accounts(
        op,
        [
            _account(
                TREASURY_FUNDING_ACCOUNT,
                AccountCode.TREASURY_FUNDING,
                "treasury",
                "participants/treasury",
                limited=False,
            ),
            *(
                _account(wallet_account_id(c), AccountCode.CITIZEN_WALLET, c, host)
                for c in citizens
            ),
        ],
    )
    transfers = [
        ledger_resources.Transfer(
            id=f"entitlement:{wallet_account_id(c)}",
            debit_account_id=TREASURY_FUNDING_ACCOUNT,
            credit_account_id=wallet_account_id(c),
            amount=ENTITLEMENT_SATANG,
            ledger=LEDGER_THB,
            code=TransferCode.ENTITLEMENT_FUNDING,
            user_data=c,
        )
        for c in citizens
    ]
    reply = await op.ledger.CreateTransfers(ledger_pb2.CreateTransfersRequest(transfers=transfers))
    for transfer, result in zip(transfers, reply.results, strict=True):
        if result not in (
            _TransferResult.CREATE_TRANSFER_RESULT_OK,
            _TransferResult.CREATE_TRANSFER_RESULT_EXISTS,
        ):
            raise RuntimeError(f"{transfer.id}: {_TransferResult.Name(result)}")
        await op.settlement.RecordTransfer(
            settlement_pb2.RecordTransferRequest(
                transfer_id=transfer.id,
                debit_participant="participants/treasury",
                credit_participant=host,
                amount=thb(transfer.amount),
            )
        )


def citizen_details(layout: MeshLayout, citizen_id: str) -> dict[str, Any]:
    """What a bank sends beyond the ID when enrolling a demo citizen: its e-KYC provider's
    assertion, and made-up personal data (an adult born in 1990)."""
    return {
        "identity_assertion": enrolment_assertion(layout.workdir, citizen_id),
        "birth_date": DEMO_BIRTH_DATE,
        "full_name": DEMO_FULL_NAME,
        "address": DEMO_ADDRESS,
        "eligibility": identity_resources.EligibilityAttestations(
            income_within_limit=True, deposits_within_limit=True
        ),
    }


async def register_payment_key(
    identity: identity_grpc.IdentityServiceStub, layout: MeshLayout, bank: str
) -> None:
    """Register the key ``bank`` signs its customers' payment authorisations with (kept in
    the mesh's workdir), valid for a year; registering it again changes nothing."""
    signer = bank_signer(layout.workdir, bank)
    now = datetime.now(UTC)
    start, end = Timestamp(), Timestamp()
    start.FromDatetime(now - timedelta(hours=1))
    end.FromDatetime(now + timedelta(days=365))
    await identity.CreateParticipantCredential(
        identity_pb2.CreateParticipantCredentialRequest(
            parent=f"participants/{bank}",
            request_id=f"seed-payment-key-{signer.kid}",
            credential=identity_resources.ParticipantCredential(
                kind=identity_resources.CREDENTIAL_KIND_ASSERTION_KEY,
                public_jwk=json.dumps(signer.public_jwk),
                not_before=start,
                not_after=end,
            ),
        )
    )


async def register_client_certificate(
    identity: identity_grpc.IdentityServiceStub, layout: MeshLayout, bank: str
) -> None:
    """Register the client certificate the dev PKI issued ``bank`` (the gateway accepts only
    registered certificates); registering it again changes nothing. No PKI, nothing to do."""
    path = layout.pki_dir / "clients" / f"{bank}.pem"
    if not path.exists():
        return
    pem = path.read_text(encoding="ascii")
    fingerprint = hashlib.sha256(
        x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    ).hexdigest()
    await identity.CreateParticipantCredential(
        identity_pb2.CreateParticipantCredentialRequest(
            parent=f"participants/{bank}",
            request_id=f"seed-client-certificate-{fingerprint[:32]}",
            credential=identity_resources.ParticipantCredential(
                kind=identity_resources.CREDENTIAL_KIND_CLIENT_CERTIFICATE,
                certificate_pem=pem,
            ),
        )
    )


async def _demo_citizen(identity: identity_grpc.IdentityServiceStub, layout: MeshLayout) -> str:
    """The demo citizen, enrolled at bank A on the first seed. A later seed (``make up`` on a
    kept ``.devstack``) finds it: enrolling again would need the very token that enrolled it,
    and each seed mints a new one."""
    try:
        found = await identity.LookupCitizen(
            identity_pb2.LookupCitizenRequest(citizen_id=DEMO_CITIZEN_ID)
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
    else:
        return found.citizen.name
    enrolled = await identity.EnrollCitizen(
        identity_pb2.EnrollCitizenRequest(
            request_id="seed-citizen-1",
            citizen_id=DEMO_CITIZEN_ID,
            home_district_code=HOME_DISTRICT,
            hosting_participant="participants/bank-a",
            **citizen_details(layout, DEMO_CITIZEN_ID),
        )
    )
    return enrolled.citizen.name


async def seed_demo_program(layout: MeshLayout) -> DemoProgram:
    async with operator(layout) as op:
        identity = op.identity
        for participant_id, name, role in (
            ("treasury", "Comptroller General's Department", _Role.PARTICIPANT_ROLE_TREASURY),
            ("operator", "OpenLoop operator", _Role.PARTICIPANT_ROLE_OPERATOR),
            ("bank-a", "Bank A", _Role.PARTICIPANT_ROLE_BANK),
            ("bank-b", "Bank B", _Role.PARTICIPANT_ROLE_BANK),
        ):
            await identity.CreateParticipant(
                identity_pb2.CreateParticipantRequest(
                    request_id=f"seed-participant-{participant_id}",
                    participant_id=participant_id,
                    participant=identity_resources.Participant(display_name=name, role=role),
                )
            )
        for bank in ("bank-a", "bank-b"):
            await register_payment_key(identity, layout, bank)
            await register_client_certificate(identity, layout, bank)
        citizen = await _demo_citizen(identity, layout)
        merchants = {}
        in_person, online = (
            identity_resources.MERCHANT_CHANNEL_IN_PERSON,
            identity_resources.MERCHANT_CHANNEL_ONLINE,
        )
        for key, tax_id, display, district, size, channel in (
            (
                "small_shop",
                "0105556000017",
                "Som Tam Corner",
                HOME_DISTRICT,
                _Size.MERCHANT_SIZE_CLASS_SMALL_SHOP,
                in_person,
            ),
            (
                "far_shop",
                "0105556000025",
                "Chiang Mai Noodles",
                OTHER_DISTRICT,
                _Size.MERCHANT_SIZE_CLASS_SMALL_SHOP,
                in_person,
            ),
            (
                "large_chain",
                "0105556000033",
                "MegaMart Phra Nakhon",
                HOME_DISTRICT,
                _Size.MERCHANT_SIZE_CLASS_LARGE_CHAIN,
                in_person,
            ),
            (
                "online_shop",
                "0105556000041",
                "Phra Nakhon Online Grocer",
                HOME_DISTRICT,
                _Size.MERCHANT_SIZE_CLASS_SMALL_SHOP,
                online,
            ),
        ):
            reply = await identity.CreateMerchant(
                identity_pb2.CreateMerchantRequest(
                    request_id=f"seed-merchant-{key}",
                    merchant=identity_resources.Merchant(
                        tax_id=tax_id,
                        display_name=display,
                        district_code=district,
                        size_class=size,
                        hosting_participant="participants/bank-b",
                        category="groceries",
                        channel=channel,
                        settlement_account=f"bank-b/{key}",
                    ),
                )
            )
            merchants[key] = reply.merchant.name
        await open_accounts(
            op,
            [
                _account(
                    wallet_account_id(m), AccountCode.MERCHANT_WALLET, m, "participants/bank-b"
                )
                for m in merchants.values()
            ],
        )
        await fund_entitlements(op, [citizen], "participants/bank-a")
    return DemoProgram(citizen=citizen, **merchants)


def _account(
    account_id: str, code: int, party: str, participant: str, *, limited: bool = True
) -> ledger_resources.Account:
    return ledger_resources.Account(
        id=account_id,
        ledger=LEDGER_THB,
        code=code,
        flags=ledger_resources.AccountFlags(debits_must_not_exceed_credits=limited),
        user_data=party,
        participant=participant,
    )
