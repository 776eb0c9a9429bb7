"""A citizen's data rights through the real server and database: export, erasure by
crypto-shredding, and re-wrapping under a new key-encryption key."""

from __future__ import annotations

import base64
import secrets

import grpc
import pytest
from sqlalchemy import select

from openloop.identity.v1 import service_pb2
from openloop_identity.config import DEVELOPMENT_PII_KEYRING
from openloop_identity.enrolment import personal_data_context
from openloop_identity.privacy import Privacy
from openloop_identity.protection import EnvelopeError, KeyRing, envelope
from openloop_identity.tables import citizens
from openloop_runtime.money import thb
from services.identity.tests.identity_helpers import (
    Identity,
    create_participant,
    enroll_request,
    expect_error,
    merchant_request,
)


async def _enrolled(identity: Identity) -> tuple[str, service_pb2.EnrollCitizenRequest, str]:
    host = await create_participant(identity)
    request = enroll_request(host)
    citizen = (await identity.stub.EnrollCitizen(request)).citizen
    return host, request, citizen.name


async def _stored(identity: Identity, name: str) -> tuple[bytes | None, str | None]:
    async with identity.db.connect() as conn:
        row = (
            await conn.execute(
                select(citizens.c.personal_data, citizens.c.personal_data_kek).where(
                    citizens.c.citizen_id == name.removeprefix("citizens/")
                )
            )
        ).one()
    return (None if row[0] is None else bytes(row[0])), row[1]


async def test_the_host_exports_what_was_enrolled(identity: Identity) -> None:
    host, request, name = await _enrolled(identity)
    exported = await identity.stub.ExportCitizenData(
        service_pb2.ExportCitizenDataRequest(name=name, acting_participant=f"participants/{host}")
    )
    assert exported.citizen.name == name
    assert exported.personal_data.full_name == request.full_name
    assert exported.personal_data.birth_date == request.birth_date
    assert exported.personal_data.address == request.address
    stranger = await create_participant(identity)
    for call in (identity.stub.ExportCitizenData, identity.stub.EraseCitizenData):
        await expect_error(
            call(
                service_pb2.ExportCitizenDataRequest(
                    name=name, acting_participant=f"participants/{stranger}"
                )
            ),
            grpc.StatusCode.NOT_FOUND,
            "CITIZEN_NOT_FOUND",
        )


async def test_erasure_shreds_the_data_for_good(identity: Identity) -> None:
    host, request, name = await _enrolled(identity)
    acting = f"participants/{host}"
    erased = await identity.stub.EraseCitizenData(
        service_pb2.EraseCitizenDataRequest(name=name, acting_participant=acting)
    )
    assert erased.citizen.HasField("erase_time")
    again = await identity.stub.EraseCitizenData(
        service_pb2.EraseCitizenDataRequest(name=name, acting_participant=acting)
    )
    assert again.citizen.erase_time == erased.citizen.erase_time

    exported = await identity.stub.ExportCitizenData(
        service_pb2.ExportCitizenDataRequest(name=name, acting_participant=acting)
    )
    assert not exported.HasField("personal_data")
    stored, kek = await _stored(identity, name)
    assert stored is not None
    assert kek is None
    with pytest.raises(EnvelopeError) as shredded:
        envelope.open(
            stored,
            keyring=KeyRing.parse(DEVELOPMENT_PII_KEYRING),
            context=personal_data_context(name.removeprefix("citizens/")),
        )
    assert shredded.value.reason == "ENVELOPE_SHREDDED"

    # The citizen name stays valid (ledger and settlement refer to it); the person cannot
    # enrol a second time, and can no longer pay.
    fetched = await identity.stub.GetCitizen(service_pb2.GetCitizenRequest(name=name))
    assert fetched.citizen.HasField("erase_time")
    second = enroll_request(host, request.citizen_id)
    await expect_error(
        identity.stub.EnrollCitizen(second),
        grpc.StatusCode.ALREADY_EXISTS,
        "CITIZEN_ALREADY_ENROLLED",
    )
    merchant = (await identity.stub.CreateMerchant(merchant_request(host))).merchant
    await expect_error(
        identity.stub.VerifyPaymentParties(
            service_pb2.VerifyPaymentPartiesRequest(
                acting_participant=acting, payer=name, payee=merchant.name, amount=thb(1_00)
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "CITIZEN_DATA_ERASED",
    )


async def test_rotation_rewraps_every_record_under_the_new_key(identity: Identity) -> None:
    _, request, name = await _enrolled(identity)
    _, before_kek = await _stored(identity, name)
    assert before_kek == "dev1"

    new_key = base64.b64encode(secrets.token_bytes(32)).decode()
    rotated = KeyRing.parse(f"k2:{new_key},{DEVELOPMENT_PII_KEYRING}")
    moved = await Privacy(identity.db, rotated).rewrap_all()
    assert moved >= 1
    assert await Privacy(identity.db, rotated).rewrap_all() == 0  # nothing left to move

    stored, kek = await _stored(identity, name)
    assert kek == "k2"
    assert stored is not None
    only_new = KeyRing.parse(f"k2:{new_key}")  # the development key is retired
    opened = envelope.open(
        stored, keyring=only_new, context=personal_data_context(name.removeprefix("citizens/"))
    )
    assert opened["full_name"] == request.full_name
    # Put the records back under the key the server runs with, for the tests after this.
    back = KeyRing.parse(f"{DEVELOPMENT_PII_KEYRING},k2:{new_key}")
    assert await Privacy(identity.db, back).rewrap_all() >= 1
