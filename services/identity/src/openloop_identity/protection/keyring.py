"""The key-encryption keys (KEKs) that wrap the per-record data keys of personal data.

A ``KeyRing`` holds one *active* KEK, which wraps every new or re-wrapped data key, and
any number of *retired* KEKs, which are kept only so records wrapped under them still
open. Rotating without downtime is therefore a configuration change in three steps:
put the new KEK first (active) and keep the old one after it; let the background job
re-wrap every record under the new KEK (``envelope.rewrap``); then drop the old KEK.

Configuration format (one string, usually a secret environment variable)::

    k2:<base64 of 32 bytes>,k1:<base64 of 32 bytes>

Entries are separated by commas, each is ``<key id>:<key>``, and the **first entry is
the active KEK**. A key id is 1 to 16 ASCII letters, digits, ``_`` or ``-`` and must be
unique; it is stored next to every wrapped data key, so a KEK's id must never be reused
for different key material. A key is standard base64 (with padding) of exactly 32 random
bytes (AES-256), for example the output of ``openssl rand -base64 32``. Whitespace
around entries and around the id and key is ignored.

Parsing errors say which entry is wrong and why, never what it contains: a
mis-pasted entry may be key material.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

KEK_LENGTH = 32
"""Bytes in a key-encryption key: AES-256."""

KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,16}")
"""What a key id may look like. Short enough that a base64 key can never pass for one."""


class KeyRingError(ValueError):
    """The key ring configuration is unusable; ``reason`` says why, machine-readably."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class KeyRing:
    """KEKs by id, the first one active. Holds ciphers, not key bytes, and never shows keys."""

    __slots__ = ("_active_id", "_ciphers")

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        """Build a ring from ``(key id, 32-byte key)`` pairs; the first pair is the active KEK."""
        ciphers: dict[str, AESGCM] = {}
        for position, (key_id, key) in enumerate(keys, start=1):
            _check_key_id(key_id, position)
            if key_id in ciphers:
                raise KeyRingError(
                    "KEYRING_DUPLICATE_KEY_ID",
                    f"key ring entry {position} reuses key id {key_id!r}; "
                    "every KEK needs its own id",
                )
            if len(key) != KEK_LENGTH:
                raise KeyRingError(
                    "KEYRING_BAD_KEY_LENGTH",
                    f"key ring entry {position} ({key_id!r}) has a {len(key)}-byte key; "
                    f"a KEK must be exactly {KEK_LENGTH} random bytes",
                )
            ciphers[key_id] = AESGCM(key)
        if not ciphers:
            raise KeyRingError("KEYRING_EMPTY", "the key ring has no KEK; at least one is needed")
        self._ciphers = ciphers
        self._active_id = next(iter(ciphers))

    @classmethod
    def parse(cls, config: str | SecretStr) -> KeyRing:
        """Read a ring from its configuration string (format in the module docstring)."""
        text = config.get_secret_value() if isinstance(config, SecretStr) else config
        if not text.strip():
            raise KeyRingError("KEYRING_EMPTY", "the key ring configuration is empty")
        entries = enumerate(text.split(","), start=1)
        return cls(_parse_entry(entry, position) for position, entry in entries)

    @property
    def active_id(self) -> str:
        """The id of the KEK that wraps new data keys."""
        return self._active_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every KEK id, the active one first."""
        return tuple(self._ciphers)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._ciphers

    def cipher(self, key_id: str) -> AESGCM:
        """The AES-GCM cipher of the KEK ``key_id``; ``KeyError`` if the ring lacks it."""
        return self._ciphers[key_id]

    def __repr__(self) -> str:
        retired = self.key_ids[1:]
        return f"KeyRing(active={self._active_id!r}, retired={retired!r}, <keys hidden>)"


def _parse_entry(entry: str, position: int) -> tuple[str, bytes]:
    key_id, colon, encoded = entry.partition(":")
    if not colon:
        raise KeyRingError(
            "KEYRING_MALFORMED_ENTRY",
            f"key ring entry {position} is not of the form <key id>:<base64 key>",
        )
    key_id = key_id.strip()
    _check_key_id(key_id, position)
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        # ``from None``: the decoder's own error must not travel along into logs.
        raise KeyRingError(
            "KEYRING_BAD_KEY_ENCODING",
            f"key ring entry {position} ({key_id!r}) is not valid standard base64",
        ) from None
    return key_id, key


def _check_key_id(key_id: str, position: int) -> None:
    if KEY_ID_PATTERN.fullmatch(key_id) is None:
        raise KeyRingError(
            "KEYRING_BAD_KEY_ID",
            f"key ring entry {position} has an invalid key id; use 1 to 16 ASCII letters, "
            "digits, '_' or '-'",
        )
