"""Which client certificates open the API: parsing the edge's header, and the cache of each
participant's registered certificates (pure logic, with the credentials as plain values)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from openloop.identity.v1 import resources_pb2 as identity_resources
from openloop_gateway.caller import Caller, caller_from_xfcc
from openloop_gateway.certificates import RegisteredCertificates, valid_fingerprints
from openloop_runtime.errors import DomainError

PREFIX = "spiffe://openloop.dev/participants/"
GOOD, OLD, KEY = "a" * 64, "b" * 64, "c" * 64
NOW = datetime.now(UTC)


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _certificate(
    sha256: str, *, revoked: bool = False, expired: bool = False
) -> identity_resources.ParticipantCredential:
    credential = identity_resources.ParticipantCredential(
        kind=identity_resources.CREDENTIAL_KIND_CLIENT_CERTIFICATE,
        certificate_sha256=sha256,
        not_before=_ts(NOW - timedelta(days=30)),
        not_after=_ts(NOW - timedelta(days=1) if expired else NOW + timedelta(days=30)),
    )
    if revoked:
        credential.revoke_time.CopyFrom(_ts(NOW - timedelta(hours=1)))
    return credential


def test_the_edge_header_gives_participant_and_hash() -> None:
    caller = caller_from_xfcc(f"Hash={GOOD.upper()};URI={PREFIX}bank-a", PREFIX)
    assert caller == Caller("bank-a", GOOD)
    assert caller_from_xfcc(f"Hash=zz;URI={PREFIX}bank-a", PREFIX) == Caller("bank-a", "")
    assert caller_from_xfcc(f"Hash={GOOD}", PREFIX) is None


def test_only_valid_client_certificates_count() -> None:
    key = identity_resources.ParticipantCredential(
        kind=identity_resources.CREDENTIAL_KIND_ASSERTION_KEY,
        certificate_sha256=KEY,
        not_before=_ts(NOW - timedelta(days=1)),
        not_after=_ts(NOW + timedelta(days=1)),
    )
    credentials = [
        _certificate(GOOD),
        _certificate(OLD, revoked=True),
        _certificate("d" * 64, expired=True),
        key,
    ]
    assert valid_fingerprints(credentials, NOW) == {GOOD}


class _Source:
    def __init__(self, *credentials: identity_resources.ParticipantCredential) -> None:
        self.credentials = list(credentials)
        self.reads = 0

    async def __call__(self, participant: str) -> list[identity_resources.ParticipantCredential]:
        assert participant == "participants/bank-a"
        self.reads += 1
        return self.credentials


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _refused(registry: RegisteredCertificates, sha256: str) -> DomainError:
    with pytest.raises(DomainError) as refused:
        await registry.require(Caller("bank-a", sha256))
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert refused.value.reason == "PARTICIPANT_NOT_AUTHENTICATED"
    return refused.value


async def test_registered_certificates_are_read_once_per_cache_period() -> None:
    source, clock = _Source(_certificate(GOOD)), _Clock()
    registry = RegisteredCertificates(source, cache_seconds=5, clock=clock)
    for _ in range(3):
        await registry.require(Caller("bank-a", GOOD))
    assert source.reads == 1

    source.credentials = [_certificate(GOOD, revoked=True)]
    clock.now += 6
    error = await _refused(registry, GOOD)
    assert error.metadata["certificate_sha256"] == GOOD
    assert source.reads == 2


async def test_unknown_certificates_cost_at_most_one_read_per_interval() -> None:
    source, clock = _Source(_certificate(GOOD)), _Clock()
    registry = RegisteredCertificates(
        source, cache_seconds=5, refresh_interval_seconds=1, clock=clock
    )
    for _ in range(5):
        await _refused(registry, OLD)
    assert source.reads == 1

    source.credentials.append(_certificate(OLD))  # registered meanwhile
    clock.now += 1.5
    await registry.require(Caller("bank-a", OLD))
    assert source.reads == 2
