"""Who is calling: the participant named by the client certificate Envoy verified.

Envoy terminates mutual TLS and, with ``forward_client_cert_details: SANITIZE_SET``,
replaces any client-supplied ``x-forwarded-client-cert`` header with the verified
certificate's URI SAN and SHA-256 hash. The gateway is reachable only through Envoy (network
policy), so this header is the participant's authenticated identity; the hash lets the gateway
also require that the certificate is one the participant registered and has not revoked
(:mod:`openloop_gateway.certificates`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc

from openloop_runtime.errors import DomainError, ErrorReason
from openloop_runtime.names import is_valid_id

XFCC_HEADER = "x-forwarded-client-cert"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Caller:
    participant_id: str
    certificate_sha256: str
    """Lower-case hex SHA-256 of the client certificate's DER; empty if the edge sent none."""


def caller_from_xfcc(header: str, uri_prefix: str) -> Caller | None:
    """The caller in an XFCC header value, or None if it names no participant."""
    # The last element is the one added by the proxy nearest to us.
    element = header.rsplit(",", maxsplit=1)[-1]
    uris: list[str] = []
    sha256 = ""
    for pair in element.split(";"):
        key, _, value = pair.partition("=")
        key, value = key.strip().lower(), value.strip().strip('"')
        if key == "uri":
            uris.append(value)
        elif key == "hash" and _SHA256_HEX.fullmatch(value.lower()):
            sha256 = value.lower()
    # Envoy emits one URI= per URI SAN. A certificate naming several identities names no
    # participant: fail closed rather than pick one of them.
    if len(uris) != 1:
        return None
    uri = uris[0]
    if not uri.startswith(uri_prefix) or not is_valid_id(uri[len(uri_prefix) :]):
        return None
    return Caller(uri[len(uri_prefix) :], sha256)


def participant_from_xfcc(header: str, uri_prefix: str) -> str | None:
    """The participant id in an XFCC header value, or None."""
    caller = caller_from_xfcc(header, uri_prefix)
    return None if caller is None else caller.participant_id


def calling_certificate(context: grpc.aio.ServicerContext, uri_prefix: str) -> Caller:
    """The caller; UNAUTHENTICATED when no verified identity came with the call."""
    for key, value in context.invocation_metadata() or ():
        if key == XFCC_HEADER and isinstance(value, str):
            caller = caller_from_xfcc(value, uri_prefix)
            if caller is not None:
                return caller
    raise DomainError(
        grpc.StatusCode.UNAUTHENTICATED,
        ErrorReason.ERROR_REASON_PARTICIPANT_NOT_AUTHENTICATED,
        "call the platform through its edge with your participant client certificate",
    )


def calling_participant(context: grpc.aio.ServicerContext, uri_prefix: str) -> str:
    """The caller's participant id; UNAUTHENTICATED when no verified identity came with the call."""
    return calling_certificate(context, uri_prefix).participant_id
