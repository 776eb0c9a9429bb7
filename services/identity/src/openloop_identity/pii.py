"""How a citizen ID becomes something we may store: a keyed hash, never the number.

A plain SHA-256 of a 13-digit number with a check digit is reversible by brute
force (about 10^12 candidates), so the hash is keyed; without the key a leaked
table reveals nothing. The token is deterministic so LookupCitizen and the
uniqueness constraint still work.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr


class CitizenIdTokenizer:
    """Turns a validated citizen ID into its stored token (64 lower-case hex digits)."""

    def __init__(self, key: SecretStr) -> None:
        self._key = key.get_secret_value().encode("utf-8")

    def token(self, citizen_id: str) -> str:
        return hmac.new(self._key, citizen_id.encode("ascii"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "CitizenIdTokenizer(<key hidden>)"
