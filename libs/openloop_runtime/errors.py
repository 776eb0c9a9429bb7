"""Domain errors and their mapping to gRPC status with a ``google.rpc.ErrorInfo``.

Code anywhere in a service raises :class:`DomainError`; the server interceptor
turns it into the status a bank's engineer sees. The reasons themselves are the
``openloop.common.v1.ErrorReason`` enum, the one documented list.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from openloop.common.v1 import error_reason_pb2

ErrorReason = error_reason_pb2.ErrorReason
_PREFIX = "ERROR_REASON_"


def reason_name(reason: error_reason_pb2.ErrorReason.ValueType) -> str:
    """The wire form of a reason: the enum name without its prefix."""
    return ErrorReason.Name(reason).removeprefix(_PREFIX)


class DomainError(Exception):
    """A failure the caller should see, with the status code and reason that fit it."""

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: error_reason_pb2.ErrorReason.ValueType,
        message: str,
        metadata: Mapping[str, str] | None = None,
        *,
        domain: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason_name(reason)
        self.message = message
        self.metadata = dict(metadata or {})
        self.domain = domain
        """Set when the error came from an upstream service; otherwise the local service's."""

    @classmethod
    def from_wire(
        cls,
        code: grpc.StatusCode,
        reason: str,
        message: str,
        metadata: Mapping[str, str] | None = None,
        *,
        domain: str | None = None,
    ) -> DomainError:
        """An error whose reason is already in wire form (stored, or from an upstream)."""
        error = cls(code, ErrorReason.ERROR_REASON_UNSPECIFIED, message, metadata, domain=domain)
        error.reason = reason
        return error

    def to_status(self, default_domain: str) -> status_pb2.Status:
        info = error_details_pb2.ErrorInfo(
            reason=self.reason, domain=self.domain or default_domain, metadata=self.metadata
        )
        detail = any_pb2.Any()
        detail.Pack(info)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=[detail])

    def __repr__(self) -> str:
        return f"DomainError({self.code.name}, {self.reason}, {self.message!r})"


def invalid_field(field: str, message: str) -> DomainError:
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.ERROR_REASON_INVALID_FIELD,
        message,
        {"field": field},
    )


def not_found(reason: error_reason_pb2.ErrorReason.ValueType, resource: str) -> DomainError:
    return DomainError(
        grpc.StatusCode.NOT_FOUND, reason, f"{resource} does not exist", {"resource": resource}
    )


def error_info_of(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a failed call, if the server sent one."""
    status = rpc_status.from_call(error)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None
