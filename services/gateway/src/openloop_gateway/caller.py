"""Who is calling: the participant named by the client certificate Envoy verified.

Envoy terminates mutual TLS and, with ``forward_client_cert_details: SANITIZE_SET``,
replaces any client-supplied ``x-forwarded-client-cert`` header with the verified
certificate's URI SAN. The gateway is reachable only through Envoy (network
policy), so this header is the participant's authenticated identity.
"""

from __future__ import annotations

import grpc

from openloop_runtime.errors import DomainError, ErrorReason
from openloop_runtime.names import is_valid_id

XFCC_HEADER = "x-forwarded-client-cert"


def participant_from_xfcc(header: str, uri_prefix: str) -> str | None:
    """The participant id in an XFCC header value, or None."""
    # The last element is the one added by the proxy nearest to us.
    element = header.rsplit(",", maxsplit=1)[-1]
    for pair in element.split(";"):
        key, _, value = pair.partition("=")
        if key.strip().lower() == "uri":
            uri = value.strip().strip('"')
            if uri.startswith(uri_prefix) and is_valid_id(uri[len(uri_prefix) :]):
                return uri[len(uri_prefix) :]
    return None


def calling_participant(context: grpc.aio.ServicerContext, uri_prefix: str) -> str:
    """The caller's participant id; UNAUTHENTICATED when no verified identity came with the call."""
    for key, value in context.invocation_metadata() or ():
        if key == XFCC_HEADER and isinstance(value, str):
            participant = participant_from_xfcc(value, uri_prefix)
            if participant is not None:
                return participant
    raise DomainError(
        grpc.StatusCode.UNAUTHENTICATED,
        ErrorReason.ERROR_REASON_PARTICIPANT_NOT_AUTHENTICATED,
        "call the platform through its edge with your participant client certificate",
    )
