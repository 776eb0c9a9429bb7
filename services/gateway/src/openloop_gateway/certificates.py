"""Only certificates a participant registered, and has not revoked, open the platform's API.

The edge's CA vouches that a certificate names a participant; the participant's registered
credentials (identity's ``CreateParticipantCredential``) say which of its certificates are
in use. Requiring both makes rotation and revocation real: a participant registers its new
certificate, switches to it, then revokes the old one, and the old one stops working within
``cache_seconds`` on every gateway replica — without a new CA or an Envoy restart.

Each participant's valid fingerprints are cached for ``cache_seconds``. A fingerprint not in
the cache makes the gateway read the participant's credentials again at most once per
``refresh_interval_seconds``, so a newly registered certificate works within that interval and
a flood of unknown certificates costs one read per participant and interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import grpc

from openloop.identity.v1 import resources_pb2 as identity_resources
from openloop_gateway.caller import Caller
from openloop_runtime.errors import DomainError, ErrorReason
from openloop_runtime.names import format_name

CredentialSource = Callable[[str], Awaitable[list[identity_resources.ParticipantCredential]]]
"""The participant's credentials, by ``participants/{participant}``."""


def valid_fingerprints(
    credentials: list[identity_resources.ParticipantCredential], now: datetime
) -> frozenset[str]:
    """The SHA-256 fingerprints of the client certificates valid at ``now``."""
    return frozenset(
        c.certificate_sha256
        for c in credentials
        if c.kind == identity_resources.CREDENTIAL_KIND_CLIENT_CERTIFICATE
        and not c.HasField("revoke_time")
        and c.not_before.ToDatetime(tzinfo=UTC) <= now < c.not_after.ToDatetime(tzinfo=UTC)
    )


class RegisteredCertificates:
    def __init__(
        self,
        source: CredentialSource,
        *,
        cache_seconds: float,
        refresh_interval_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._cache_seconds = cache_seconds
        self._refresh_interval = refresh_interval_seconds
        self._clock = clock
        self._cached: dict[str, tuple[float, frozenset[str]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def require(self, caller: Caller) -> None:
        """Return if the caller's certificate is registered and valid; else UNAUTHENTICATED."""
        cached = self._cached.get(caller.participant_id)
        now = self._clock()
        if cached is not None and now - cached[0] < self._cache_seconds:
            if caller.certificate_sha256 in cached[1]:
                return
            if now - cached[0] < self._refresh_interval:
                raise _not_registered(caller)
        fingerprints = await self._refresh(caller.participant_id)
        if caller.certificate_sha256 not in fingerprints:
            raise _not_registered(caller)

    async def _refresh(self, participant_id: str) -> frozenset[str]:
        lock = self._locks.setdefault(participant_id, asyncio.Lock())
        async with lock:
            cached = self._cached.get(participant_id)
            if cached is not None and self._clock() - cached[0] < self._refresh_interval:
                return cached[1]  # a concurrent call just read them
            credentials = await self._source(format_name("participants", participant_id))
            fingerprints = valid_fingerprints(credentials, datetime.now(UTC))
            self._cached[participant_id] = (self._clock(), fingerprints)
            return fingerprints


def _not_registered(caller: Caller) -> DomainError:
    participant = format_name("participants", caller.participant_id)
    return DomainError(
        grpc.StatusCode.UNAUTHENTICATED,
        ErrorReason.ERROR_REASON_PARTICIPANT_NOT_AUTHENTICATED,
        f"this client certificate is not registered for {participant}, or was revoked or has "
        "expired: register it with CreateParticipantCredential before using it",
        {"participant": participant, "certificate_sha256": caller.certificate_sha256},
    )
