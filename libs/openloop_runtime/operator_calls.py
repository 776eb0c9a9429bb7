"""The calling side of operator tokens: a channel whose every call carries one.

Tools that administer a service (the dev seed, the bulk-import CLI, tests and benchmarks)
open one of these instead of adding ``metadata=`` to every call, so no call site can forget
the token and a new call needs nothing extra. The token is minted when first needed and
again shortly before it expires, so a channel may live longer than one token.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import grpc

from openloop_runtime.operators import DEFAULT_TOKEN_LIFETIME, mint
from openloop_runtime.timestamps import utc_now

_RENEW_BEFORE_EXPIRY = timedelta(minutes=1)


class OperatorToken:
    """Short-lived tokens for one operator and one service, minted from their private key."""

    def __init__(
        self,
        private_key_pem: bytes,
        *,
        kid: str,
        subject: str,
        role: str,
        audience: str,
        lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._key = private_key_pem
        self._kid = kid
        self._subject = subject
        self._role = role
        self._audience = audience
        self._lifetime = lifetime
        self._clock = clock
        self._token = ""
        self._renew_at: datetime | None = None

    def __call__(self) -> str:
        now = self._clock()
        if self._renew_at is None or now >= self._renew_at:
            self._token = mint(
                self._key,
                kid=self._kid,
                subject=self._subject,
                role=self._role,
                audience=self._audience,
                now=now,
                lifetime=self._lifetime,
            )
            self._renew_at = now + max(self._lifetime - _RENEW_BEFORE_EXPIRY, self._lifetime / 2)
        return self._token

    def metadata(self) -> list[tuple[str, str]]:
        """The ``authorization`` metadata of one call."""
        return [("authorization", f"Bearer {self()}")]


class _WithToken:
    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*details.metadata) if details.metadata else grpc.aio.Metadata()
        metadata["authorization"] = f"Bearer {self._token()}"
        return details._replace(metadata=metadata)


class _UnaryUnary(_WithToken, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


class _UnaryStream(_WithToken, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


class _StreamUnary(_WithToken, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


class _StreamStream(_WithToken, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


def operator_interceptors(token: Callable[[], str]) -> list[grpc.aio.ClientInterceptor]:
    """Client interceptors that send ``token()`` with every call, whatever its shape."""
    return [_UnaryUnary(token), _UnaryStream(token), _StreamUnary(token), _StreamStream(token)]


def operator_channel(target: str, token: Callable[[], str]) -> grpc.aio.Channel:
    """A plaintext channel to ``target`` whose every call carries an operator token."""
    return grpc.aio.insecure_channel(target, interceptors=operator_interceptors(token))
