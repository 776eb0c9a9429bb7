"""Envelope encryption of a person's personal data: names, birth dates, addresses.

Each record gets its own fresh 256-bit data key (DEK). The DEK encrypts the record's
canonical JSON with AES-GCM, the associated data being a *context* that names the row
(for example ``b"citizens/c123"``), so a ciphertext copied into another row does not
open. The DEK is then wrapped, also with AES-GCM, by the key ring's active
key-encryption key (KEK), with the KEK's id and the context as associated data. Only
the wrapped DEK is stored. Both layers use ``cryptography``'s ``AESGCM``.

Rotation without downtime: ``rewrap`` re-wraps a record's DEK under the active KEK and
leaves its nonce and ciphertext alone, so a background job can move every record to a
new KEK while the service keeps reading and writing (see ``keyring`` for the steps).
Rotating the KEK does not change a record's DEK; to re-key the data itself, ``open``
the record and ``seal`` it again.

Crypto-shredding: ``shred`` erases a record's wrapped DEK (in a table, setting the key
column to NULL or empty). The DEK existed nowhere else, so the ciphertext can no longer
be decrypted by anyone, whichever KEKs they hold, and ``open`` fails with
``ENVELOPE_SHREDDED``; the row itself can stay. This erases the *live* copy only: a
backup, replica or log taken before the shredding still holds the wrapped DEK and
opens with the KEK that wrapped it. Erasure is complete once every such copy has
expired or that KEK has been rotated out and destroyed; the retention of backups and
the lifetime of KEKs bound how long a shredded record remains recoverable.

Byte layout of ``SealedRecord.to_bytes()``, format version 1::

    1 byte    format version (1)
    1 byte    n, the length of the KEK id
    n bytes   KEK id, ASCII
    1 byte    w, the length of the wrapped DEK: 60, or 0 once shredded
    w bytes   wrapped DEK: 12-byte nonce, then AES-GCM(KEK, DEK) with its 16-byte tag
    12 bytes  data nonce
    the rest  AES-GCM(DEK, canonical JSON of the record) with its 16-byte tag

The associated data of the record's encryption is the context itself; that of the DEK's
wrapping is one byte n, the KEK id (n bytes, ASCII), then the context. The canonical
JSON is an object of string fields with sorted keys, no whitespace, in UTF-8.

Nonces are random. Data nonces are never repeated under a key because every DEK
encrypts once; a KEK's wrap nonces are random 96-bit values, which stays safe for
about 2**32 wraps (seals plus rewraps) per KEK, far more than a KEK should live.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openloop_identity.protection.keyring import KEY_ID_PATTERN, KeyRing

FORMAT_VERSION = 1
DEK_LENGTH = 32
NONCE_LENGTH = 12
TAG_LENGTH = 16
WRAPPED_DEK_LENGTH = NONCE_LENGTH + DEK_LENGTH + TAG_LENGTH


class EnvelopeError(ValueError):
    """A record could not be sealed or opened; ``reason`` says why, machine-readably.

    Reasons: ``ENVELOPE_TAMPERED``, ``ENVELOPE_UNKNOWN_KEY``, ``ENVELOPE_SHREDDED``,
    ``ENVELOPE_MALFORMED``, ``ENVELOPE_UNSUPPORTED_VERSION``, ``ENVELOPE_CONTEXT_EMPTY``,
    ``ENVELOPE_RECORD_INVALID``. Messages never contain field values.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """An encrypted record: which KEK wrapped its DEK, the wrapped DEK, nonce, ciphertext."""

    kek_id: str
    wrapped_dek: bytes
    """Wrap nonce followed by the wrapped DEK and its tag; empty once shredded."""
    nonce: bytes
    ciphertext: bytes

    def __post_init__(self) -> None:
        if KEY_ID_PATTERN.fullmatch(self.kek_id) is None:
            raise _malformed("its KEK id is not a valid key id")
        if len(self.wrapped_dek) not in (0, WRAPPED_DEK_LENGTH):
            raise _malformed(
                f"its wrapped data key is {len(self.wrapped_dek)} bytes, "
                f"not {WRAPPED_DEK_LENGTH} (or 0 when shredded)"
            )
        if len(self.nonce) != NONCE_LENGTH:
            raise _malformed(f"its nonce is {len(self.nonce)} bytes, not {NONCE_LENGTH}")
        if len(self.ciphertext) < TAG_LENGTH:
            raise _malformed("its ciphertext is shorter than an AES-GCM tag")

    @property
    def is_shredded(self) -> bool:
        """Whether the wrapped DEK was erased, making the record unrecoverable."""
        return not self.wrapped_dek

    def to_bytes(self) -> bytes:
        """The compact, versioned encoding described in the module docstring."""
        kek_id = self.kek_id.encode("ascii")
        return b"".join(
            (
                bytes((FORMAT_VERSION, len(kek_id))),
                kek_id,
                bytes((len(self.wrapped_dek),)),
                self.wrapped_dek,
                self.nonce,
                self.ciphertext,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SealedRecord:
        """Decode ``to_bytes()`` output; ``EnvelopeError`` if it is not a sealed record."""
        if not data:
            raise _malformed("it is empty")
        if data[0] != FORMAT_VERSION:
            raise EnvelopeError(
                "ENVELOPE_UNSUPPORTED_VERSION",
                f"sealed record has format version {data[0]}; "
                f"this service reads version {FORMAT_VERSION}",
            )
        reader = _Reader(data, 1)
        kek_id_bytes = reader.take(reader.length())
        wrapped_dek = reader.take(reader.length())
        nonce = reader.take(NONCE_LENGTH)
        try:
            kek_id = kek_id_bytes.decode("ascii")
        except UnicodeDecodeError:
            raise _malformed("its KEK id is not ASCII") from None
        return cls(kek_id, wrapped_dek, nonce, reader.rest())


def seal(record: Mapping[str, str], *, keyring: KeyRing, context: bytes) -> SealedRecord:
    """Encrypt ``record`` under a fresh DEK bound to ``context``; wrap the DEK with the
    active KEK. ``context`` names the row the record is stored in and must be given
    again, identical, to open it."""
    _check_context(context)
    plaintext = _canonical_json(record)
    dek = AESGCM.generate_key(bit_length=DEK_LENGTH * 8)
    nonce = os.urandom(NONCE_LENGTH)
    ciphertext = AESGCM(dek).encrypt(nonce, plaintext, context)
    return SealedRecord(
        kek_id=keyring.active_id,
        wrapped_dek=_wrap(dek, keyring, context),
        nonce=nonce,
        ciphertext=ciphertext,
    )


def open(sealed: SealedRecord | bytes, *, keyring: KeyRing, context: bytes) -> dict[str, str]:
    """Decrypt a sealed record stored under ``context``, with any KEK of the ring.

    Shadows the builtin inside this module on purpose: callers write ``envelope.open``."""
    _check_context(context)
    sealed = _as_sealed(sealed)
    dek = _unwrap(sealed, keyring, context)
    try:
        plaintext = AESGCM(dek).decrypt(sealed.nonce, sealed.ciphertext, context)
    except InvalidTag:
        raise EnvelopeError(
            "ENVELOPE_TAMPERED",
            "the sealed record's ciphertext does not authenticate under its data key and "
            "this context: it was modified, or copied from another row",
        ) from None
    return _parse_record(plaintext)


def rewrap(sealed: SealedRecord | bytes, *, keyring: KeyRing, context: bytes) -> SealedRecord:
    """Re-wrap the record's DEK under the ring's active KEK, leaving nonce and ciphertext
    untouched. A record already under the active KEK is returned unchanged once its
    wrapped DEK has been checked, so a rotation job can run again safely."""
    _check_context(context)
    sealed = _as_sealed(sealed)
    dek = _unwrap(sealed, keyring, context)
    if sealed.kek_id == keyring.active_id:
        return sealed
    return replace(sealed, kek_id=keyring.active_id, wrapped_dek=_wrap(dek, keyring, context))


def shred(sealed: SealedRecord | bytes) -> SealedRecord:
    """The record with its wrapped DEK erased: nobody can open it again, with any KEK."""
    return replace(_as_sealed(sealed), wrapped_dek=b"")


def _wrap(dek: bytes, keyring: KeyRing, context: bytes) -> bytes:
    kek_id = keyring.active_id
    nonce = os.urandom(NONCE_LENGTH)
    return nonce + keyring.cipher(kek_id).encrypt(nonce, dek, _wrap_aad(kek_id, context))


def _unwrap(sealed: SealedRecord, keyring: KeyRing, context: bytes) -> bytes:
    if sealed.is_shredded:
        raise EnvelopeError(
            "ENVELOPE_SHREDDED",
            "the sealed record's data key was erased (crypto-shredded); its contents cannot "
            "be recovered",
        )
    if sealed.kek_id not in keyring:
        raise EnvelopeError(
            "ENVELOPE_UNKNOWN_KEY",
            f"the sealed record's data key is wrapped by KEK {sealed.kek_id!r}, which is not "
            "in the key ring: it was removed before every record was re-wrapped, or the "
            "ring is misconfigured",
        )
    wrapped = sealed.wrapped_dek
    aad = _wrap_aad(sealed.kek_id, context)
    try:
        return keyring.cipher(sealed.kek_id).decrypt(
            wrapped[:NONCE_LENGTH], wrapped[NONCE_LENGTH:], aad
        )
    except InvalidTag:
        raise EnvelopeError(
            "ENVELOPE_TAMPERED",
            f"the sealed record's wrapped data key does not authenticate under KEK "
            f"{sealed.kek_id!r} and this context: it was modified or copied from another "
            "row, or the KEK with that id is not the key that sealed it",
        ) from None


def _wrap_aad(kek_id: str, context: bytes) -> bytes:
    # Length-prefixed so that no (id, context) pair can collide with another.
    encoded = kek_id.encode("ascii")
    return bytes((len(encoded),)) + encoded + context


def _check_context(context: bytes) -> None:
    if not context:
        raise EnvelopeError(
            "ENVELOPE_CONTEXT_EMPTY",
            "context is empty; pass the name of the row the record belongs to, such as "
            "b'citizens/c123', so its ciphertext cannot be moved to another row",
        )


def _canonical_json(record: Mapping[str, str]) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same record always gives the same bytes."""
    for name, value in record.items():
        if not isinstance(name, str):
            raise EnvelopeError("ENVELOPE_RECORD_INVALID", "record field names must be text (str)")
        if not _is_utf8_encodable(name):
            raise EnvelopeError(
                "ENVELOPE_RECORD_INVALID",
                "a record field name is not valid Unicode text (it holds a lone surrogate)",
            )
        if not isinstance(value, str):
            raise EnvelopeError(
                "ENVELOPE_RECORD_INVALID",
                f"record field {name!r} is {type(value).__name__}; records hold text (str) only",
            )
        if not _is_utf8_encodable(value):
            raise EnvelopeError(
                "ENVELOPE_RECORD_INVALID",
                f"record field {name!r} is not valid Unicode text (it holds a lone surrogate)",
            )
    return json.dumps(
        dict(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def _is_utf8_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse_record(plaintext: bytes) -> dict[str, str]:
    try:
        record = json.loads(plaintext.decode("utf-8"))
    except ValueError:
        raise _malformed("it decrypts to something other than JSON text") from None
    if not isinstance(record, dict) or not all(
        isinstance(name, str) and isinstance(value, str) for name, value in record.items()
    ):
        raise _malformed("it decrypts to something other than a map of text fields")
    return record


def _as_sealed(sealed: SealedRecord | bytes) -> SealedRecord:
    return sealed if isinstance(sealed, SealedRecord) else SealedRecord.from_bytes(sealed)


def _malformed(detail: str) -> EnvelopeError:
    return EnvelopeError("ENVELOPE_MALFORMED", f"not a sealed record: {detail}")


class _Reader:
    """Reads the byte layout front to back; running out of bytes is ``ENVELOPE_MALFORMED``."""

    def __init__(self, data: bytes, offset: int) -> None:
        self._data = data
        self._offset = offset

    def length(self) -> int:
        return self.take(1)[0]

    def take(self, count: int) -> bytes:
        end = self._offset + count
        if end > len(self._data):
            raise _malformed("it is truncated")
        chunk = self._data[self._offset : end]
        self._offset = end
        return chunk

    def rest(self) -> bytes:
        return self._data[self._offset :]
