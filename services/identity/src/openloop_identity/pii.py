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

    def phone_token(self, number: str) -> str:
        """The stored token of a validated phone number. Domain-separated from citizen-ID
        tokens (which are 13 digits, a phone number 10), so the two can never collide."""
        message = b"phone\x00" + number.encode("ascii")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "CitizenIdTokenizer(<key hidden>)"
