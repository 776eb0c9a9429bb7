"""Free-text fields checked once, the same way in every service."""

from __future__ import annotations

from openloop_runtime.errors import invalid_field


def bounded_text(value: str, *, field: str, max_length: int, required: bool = False) -> str:
    """``value`` if it fits; INVALID_ARGUMENT naming ``field`` otherwise.

    NUL is refused explicitly: it is valid in a protobuf string but impossible in a
    PostgreSQL text column, where it would surface as an INTERNAL error.
    """
    if required and not value.strip():
        raise invalid_field(field, f"{field} must not be empty")
    if len(value) > max_length:
        raise invalid_field(field, f"{field} must be at most {max_length} characters")
    if "\x00" in value:
        raise invalid_field(field, f"{field} must not contain NUL characters")
    return value
