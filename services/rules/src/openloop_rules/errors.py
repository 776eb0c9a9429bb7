"""The rules service's refusals, as DomainErrors with their ErrorInfo reasons (70-79)."""

from __future__ import annotations

import grpc

from openloop_rules.program import ProgramError
from openloop_rules.ruleset import RuleSetError
from openloop_runtime.errors import DomainError, ErrorReason


def rule_set_invalid(error: RuleSetError) -> DomainError:
    metadata = {"field": error.field or "document"}
    if error.rule_id:
        metadata["rule_id"] = error.rule_id
    if error.line:
        metadata["line"] = str(error.line)
        metadata["column"] = str(error.column)
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.ERROR_REASON_RULE_SET_INVALID,
        str(error)[:2000],
        metadata,
    )


def program_invalid(error: ProgramError) -> DomainError:
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.ERROR_REASON_PROGRAM_INVALID,
        str(error)[:2000],
        {"field": f"program_document.{error.field}" if error.field else "program_document"},
    )


def rule_set_not_found(version: str) -> DomainError:
    resource = f"ruleSets/{version}"
    return DomainError(
        grpc.StatusCode.NOT_FOUND,
        ErrorReason.ERROR_REASON_RULE_SET_NOT_FOUND,
        f"{resource} does not exist",
        {"resource": resource},
    )


def program_not_found(program_id: str, version: str = "") -> DomainError:
    resource = f"programs/{program_id}" + (f" version {version}" if version else "")
    return DomainError(
        grpc.StatusCode.NOT_FOUND,
        ErrorReason.ERROR_REASON_PROGRAM_NOT_FOUND,
        f"{resource} does not exist",
        {"resource": f"programs/{program_id}", **({"program_version": version} if version else {})},
    )


def version_exists(what: str) -> DomainError:
    return DomainError(
        grpc.StatusCode.ALREADY_EXISTS,
        ErrorReason.ERROR_REASON_RULE_SET_VERSION_EXISTS,
        f"{what} is already published with other content; a changed document needs a new version",
        {"resource": what},
    )


def activation_conflict(message: str, **metadata: str) -> DomainError:
    return DomainError(
        grpc.StatusCode.FAILED_PRECONDITION,
        ErrorReason.ERROR_REASON_ACTIVATION_CONFLICT,
        message,
        metadata,
    )
