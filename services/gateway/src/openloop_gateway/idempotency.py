"""The client-chosen keys that make every mutation safe to retry."""

from __future__ import annotations

import re

from openloop_runtime.errors import invalid_field

_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def idempotency_key(value: str) -> str:
    """``value`` if it is a well-formed key, else INVALID_ARGUMENT naming ``idempotency_key``."""
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise invalid_field(
            "idempotency_key", "idempotency_key must be 1-128 characters of [A-Za-z0-9._:-]"
        )
    return value
