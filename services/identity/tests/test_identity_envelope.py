"""Envelope encryption of personal data: round trips, tamper and context detection, KEK
rotation, crypto-shredding, and a key ring that never shows its keys."""

from __future__ import annotations

import base64
import os
import traceback

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from openloop_identity.protection import (
    EnvelopeError,
    KeyRing,
    KeyRingError,
    SealedRecord,
    envelope,
)

CONTEXT = b"citizens/c123"
RECORD = {
    "given_name": "สมชาย",
    "family_name": "ใจดี",
    "birth_date": "1985-02-14",
    "address": "99/1 ถนนพระราม 4 กรุงเทพมหานคร 10500",
}
K1 = os.urandom(32)
K2 = os.urandom(32)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def ring(*keys: tuple[str, bytes]) -> KeyRing:
    return KeyRing(keys)


def reason_of(excinfo: pytest.ExceptionInfo[EnvelopeError]) -> str:
    return excinfo.value.reason


def test_round_trip_with_thai_text() -> None:
    keyring = ring(("k1", K1))
    sealed = envelope.seal(RECORD, keyring=keyring, context=CONTEXT)
    assert sealed.kek_id == "k1"
    assert envelope.open(sealed, keyring=keyring, context=CONTEXT) == RECORD
    encoded = sealed.to_bytes()
    assert encoded[0] == 1
    assert SealedRecord.from_bytes(encoded) == sealed
    assert envelope.open(encoded, keyring=keyring, context=CONTEXT) == RECORD
    for value in RECORD.values():
        assert value.encode("utf-8") not in encoded


def test_every_seal_uses_a_fresh_data_key_and_nonce() -> None:
    keyring = ring(("k1", K1))
    first = envelope.seal(RECORD, keyring=keyring, context=CONTEXT)
    second = envelope.seal(RECORD, keyring=keyring, context=CONTEXT)
    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext
    assert first.wrapped_dek != second.wrapped_dek


def test_every_flipped_bit_is_detected() -> None:
    keyring = ring(("k1", K1))
    encoded = envelope.seal(RECORD, keyring=keyring, context=CONTEXT).to_bytes()
    kek_id_end = 2 + encoded[1]
    header_reasons = {
        0: {"ENVELOPE_UNSUPPORTED_VERSION"},
        1: {"ENVELOPE_MALFORMED", "ENVELOPE_UNKNOWN_KEY"},
        kek_id_end: {"ENVELOPE_MALFORMED"},
    }
    for position in range(len(encoded)):
        if position in header_reasons:
            expected = header_reasons[position]
        elif position < kek_id_end:
            expected = {"ENVELOPE_UNKNOWN_KEY", "ENVELOPE_MALFORMED"}
        else:
            expected = {"ENVELOPE_TAMPERED"}
        for bit in range(8):
            tampered = bytearray(encoded)
            tampered[position] ^= 1 << bit
            with pytest.raises(EnvelopeError) as excinfo:
                envelope.open(bytes(tampered), keyring=keyring, context=CONTEXT)
            assert reason_of(excinfo) in expected, (position, bit)


def test_truncated_or_extended_encodings_are_rejected() -> None:
    keyring = ring(("k1", K1))
    encoded = envelope.seal(RECORD, keyring=keyring, context=CONTEXT).to_bytes()
    for length in range(len(encoded)):
        with pytest.raises(EnvelopeError) as excinfo:
            envelope.open(encoded[:length], keyring=keyring, context=CONTEXT)
        assert reason_of(excinfo) in {"ENVELOPE_MALFORMED", "ENVELOPE_TAMPERED"}, length
    with pytest.raises(EnvelopeError) as excinfo:
        envelope.open(encoded + b"\x00", keyring=keyring, context=CONTEXT)
    assert reason_of(excinfo) == "ENVELOPE_TAMPERED"


def test_a_future_format_version_is_named_as_such() -> None:
    keyring = ring(("k1", K1))
    encoded = envelope.seal(RECORD, keyring=keyring, context=CONTEXT).to_bytes()
    with pytest.raises(EnvelopeError, match="version 2") as excinfo:
        SealedRecord.from_bytes(b"\x02" + encoded[1:])
    assert reason_of(excinfo) == "ENVELOPE_UNSUPPORTED_VERSION"


def test_ciphertext_is_bound_to_its_row() -> None:
    keyring = ring(("k1", K1))
    sealed = envelope.seal(RECORD, keyring=keyring, context=CONTEXT)
    for other in (b"citizens/c124", b"citizens/c12", b"merchants/c123"):
        with pytest.raises(EnvelopeError) as excinfo:
            envelope.open(sealed, keyring=keyring, context=other)
        assert reason_of(excinfo) == "ENVELOPE_TAMPERED"
        with pytest.raises(EnvelopeError) as excinfo:
            envelope.rewrap(sealed, keyring=keyring, context=other)
        assert reason_of(excinfo) == "ENVELOPE_TAMPERED"


def test_swapping_a_wrapped_key_between_rows_is_detected() -> None:
    keyring = ring(("k1", K1))
    mine = envelope.seal(RECORD, keyring=keyring, context=CONTEXT)
    theirs = envelope.seal(RECORD, keyring=keyring, context=b"citizens/c999")
    spliced = SealedRecord(mine.kek_id, theirs.wrapped_dek, mine.nonce, mine.ciphertext)
    with pytest.raises(EnvelopeError) as excinfo:
        envelope.open(spliced, keyring=keyring, context=CONTEXT)
    assert reason_of(excinfo) == "ENVELOPE_TAMPERED"


def wrap_by_hand(dek: bytes, kek: bytes, kek_id: str, context: bytes) -> bytes:
    """The DEK wrapping exactly as the module docstring documents it."""
    nonce = os.urandom(12)
    aad = bytes((len(kek_id),)) + kek_id.encode("ascii") + context
    return nonce + AESGCM(kek).encrypt(nonce, dek, aad)


def seal_by_hand(plaintext: bytes, context: bytes) -> bytes:
    """A version-1 encoding built from the documented layout alone, under k1 = K1."""
    dek = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    wrapped = wrap_by_hand(dek, K1, "k1", context)
    ciphertext = AESGCM(dek).encrypt(nonce, plaintext, context)
    return b"\x01\x02k1" + bytes((len(wrapped),)) + wrapped + nonce + ciphertext


def test_encoding_follows_its_documentation() -> None:
    keyring = ring(("k1", K1))
    made = seal_by_hand(b'{"a":"1","b":"\xe0\xb8\x81"}', CONTEXT)
    assert envelope.open(made, keyring=keyring, context=CONTEXT) == {"a": "1", "b": "ก"}

    sealed = envelope.seal({"b": "ก", "a": "1"}, keyring=keyring, context=CONTEXT)
    wrapped = sealed.wrapped_dek
    aad = b"\x02k1" + CONTEXT
    dek = AESGCM(K1).decrypt(wrapped[:12], wrapped[12:], aad)
    plaintext = AESGCM(dek).decrypt(sealed.nonce, sealed.ciphertext, CONTEXT)
    assert plaintext == '{"a":"1","b":"ก"}'.encode()


def test_ciphertext_stays_bound_to_its_row_even_if_its_key_is_rewrapped_elsewhere() -> None:
    keyring = ring(("k1", K1))
    sealed = envelope.seal(RECORD, keyring=keyring, context=CONTEXT)
    wrapped = sealed.wrapped_dek
    dek = AESGCM(K1).decrypt(wrapped[:12], wrapped[12:], b"\x02k1" + CONTEXT)
    other = b"citizens/c999"
    moved = SealedRecord("k1", wrap_by_hand(dek, K1, "k1", other), sealed.nonce, sealed.ciphertext)
    with pytest.raises(EnvelopeError) as excinfo:
        envelope.open(moved, keyring=keyring, context=other)
    assert reason_of(excinfo) == "ENVELOPE_TAMPERED"
    assert "ciphertext" in str(excinfo.value)


@pytest.mark.parametrize("plaintext", [b"[1]", b'{"a":1}', b"not json", b"\xff"])
def test_authentic_plaintext_that_is_not_a_record_is_malformed(plaintext: bytes) -> None:
    with pytest.raises(EnvelopeError) as excinfo:
        envelope.open(seal_by_hand(plaintext, CONTEXT), keyring=ring(("k1", K1)), context=CONTEXT)
    assert reason_of(excinfo) == "ENVELOPE_MALFORMED"


def test_empty_context_is_refused() -> None:
    keyring = ring(("k1", K1))
    sealed = envelope.seal(RECORD, keyring=keyring, context=CONTEXT)
    with pytest.raises(EnvelopeError) as excinfo:
        envelope.seal(RECORD, keyring=keyring, context=b"")
    assert reason_of(excinfo) == "ENVELOPE_CONTEXT_EMPTY"
    with pytest.raises(EnvelopeError) as excinfo:
        envelope.open(sealed, keyring=keyring, context=b"")
    assert reason_of(excinfo) == "ENVELOPE_CONTEXT_EMPTY"


def test_same_key_id_with_other_key_material_does_not_open() -> None:
    sealed = envelope.seal(RECORD, keyring=ring(("k1", K1)), context=CONTEXT)
    with pytest.raises(EnvelopeError) as excinfo:
        envelope.open(sealed, keyring=ring(("k1", K2)), context=CONTEXT)
    assert reason_of(excinfo) == "ENVELOPE_TAMPERED"


def test_unknown_kek_is_named() -> None:
    sealed = envelope.seal(RECORD, keyring=ring(("k1", K1)), context=CONTEXT)
    with pytest.raises(EnvelopeError, match="'k1'") as excinfo:
        envelope.open(sealed, keyring=ring(("k2", K2)), context=CONTEXT)
    assert reason_of(excinfo) == "ENVELOPE_UNKNOWN_KEY"


def test_rotation_without_downtime() -> None:
    before = KeyRing.parse(f"k1:{b64(K1)}")
    old = envelope.seal(RECORD, keyring=before, context=CONTEXT)

    during = KeyRing.parse(f"k2:{b64(K2)},k1:{b64(K1)}")
    new = envelope.seal({"given_name": "มานี"}, keyring=during, context=b"citizens/c2")
    assert new.kek_id == "k2"
    assert envelope.open(old, keyring=during, context=CONTEXT) == RECORD
    assert envelope.open(new, keyring=during, context=b"citizens/c2") == {"given_name": "มานี"}

    rewrapped = envelope.rewrap(old, keyring=during, context=CONTEXT)
    assert rewrapped.kek_id == "k2"
    assert rewrapped.nonce == old.nonce
    assert rewrapped.ciphertext == old.ciphertext
    assert rewrapped.wrapped_dek != old.wrapped_dek
    assert envelope.rewrap(rewrapped, keyring=during, context=CONTEXT) is rewrapped

    after = KeyRing.parse(f"k2:{b64(K2)}")
    assert envelope.open(rewrapped, keyring=after, context=CONTEXT) == RECORD
    assert envelope.open(new, keyring=after, context=b"citizens/c2") == {"given_name": "มานี"}
    with pytest.raises(EnvelopeError) as excinfo:
        envelope.open(old, keyring=after, context=CONTEXT)
    assert reason_of(excinfo) == "ENVELOPE_UNKNOWN_KEY"


def test_shredded_record_cannot_be_opened_with_any_kek() -> None:
    every_kek = ring(("k2", K2), ("k1", K1))
    sealed = envelope.seal(RECORD, keyring=ring(("k1", K1)), context=CONTEXT)
    shredded = envelope.shred(sealed.to_bytes())
    assert shredded.is_shredded
    assert not sealed.is_shredded
    assert shredded.ciphertext == sealed.ciphertext

    stored = shredded.to_bytes()
    assert sealed.wrapped_dek not in stored
    assert SealedRecord.from_bytes(stored) == shredded
    for operation in (envelope.open, envelope.rewrap):
        with pytest.raises(EnvelopeError, match="crypto-shredded") as excinfo:
            operation(stored, keyring=every_kek, context=CONTEXT)
        assert reason_of(excinfo) == "ENVELOPE_SHREDDED"


def test_shredding_a_column_directly_is_recognised() -> None:
    sealed = envelope.seal(RECORD, keyring=ring(("k1", K1)), context=CONTEXT)
    from_columns = SealedRecord(sealed.kek_id, b"", sealed.nonce, sealed.ciphertext)
    with pytest.raises(EnvelopeError) as excinfo:
        envelope.open(from_columns, keyring=ring(("k1", K1)), context=CONTEXT)
    assert reason_of(excinfo) == "ENVELOPE_SHREDDED"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"wrapped_dek": b"\x00" * 59}, "wrapped data key"),
        ({"nonce": b"\x00" * 11}, "nonce"),
        ({"ciphertext": b"\x00" * 15}, "ciphertext"),
        ({"kek_id": "k:1"}, "KEK id"),
    ],
)
def test_sealed_record_fields_are_checked(kwargs: dict[str, object], fragment: str) -> None:
    fields: dict[str, object] = {
        "kek_id": "k1",
        "wrapped_dek": b"\x00" * 60,
        "nonce": b"\x00" * 12,
        "ciphertext": b"\x00" * 16,
    }
    SealedRecord(**fields)  # type: ignore[arg-type]
    fields.update(kwargs)
    with pytest.raises(EnvelopeError, match=fragment) as excinfo:
        SealedRecord(**fields)  # type: ignore[arg-type]
    assert reason_of(excinfo) == "ENVELOPE_MALFORMED"


@pytest.mark.parametrize(
    "record",
    [
        {"birth_date": 19850214},
        {"given_name": "Som\ud800chai"},
        {"\udfffname": "Somchai"},
    ],
)
def test_seal_refuses_non_text_without_echoing_it(record: dict[str, object]) -> None:
    with pytest.raises(EnvelopeError) as excinfo:
        envelope.seal(record, keyring=ring(("k1", K1)), context=CONTEXT)  # type: ignore[arg-type]
    assert reason_of(excinfo) == "ENVELOPE_RECORD_INVALID"
    message = str(excinfo.value)
    assert "19850214" not in message
    assert "Som" not in message
    assert "\udfff" not in message


@given(
    record=st.dictionaries(st.text(max_size=20), st.text(max_size=60), max_size=8),
    context=st.binary(min_size=1, max_size=40),
)
def test_any_text_record_round_trips(record: dict[str, str], context: bytes) -> None:
    keyring = ring(("k1", K1))
    encoded = envelope.seal(record, keyring=keyring, context=context).to_bytes()
    assert envelope.open(encoded, keyring=keyring, context=context) == record


def test_keyring_parses_configuration_with_the_first_key_active() -> None:
    keyring = KeyRing.parse(SecretStr(f" k2 : {b64(K2)} ,\n k1:{b64(K1)}\n"))
    assert keyring.active_id == "k2"
    assert keyring.key_ids == ("k2", "k1")
    assert "k1" in keyring
    assert "k3" not in keyring
    sealed = envelope.seal(RECORD, keyring=keyring, context=CONTEXT)
    assert sealed.kek_id == "k2"
    assert envelope.open(sealed, keyring=ring(("k2", K2)), context=CONTEXT) == RECORD


def test_keyring_repr_hides_keys() -> None:
    keyring = KeyRing.parse(f"k2:{b64(K2)},k1:{b64(K1)}")
    shown = repr(keyring)
    assert "k2" in shown
    assert "k1" in shown
    for key in (K1, K2):
        assert b64(key) not in shown
        assert key.hex() not in shown
        assert repr(key) not in shown


SHORT = os.urandom(31)
LONG = os.urandom(48)
URLSAFE_KEY = b"\xfb" * 32
URLSAFE = base64.urlsafe_b64encode(URLSAFE_KEY).decode("ascii")


@pytest.mark.parametrize(
    ("config", "reason", "secrets"),
    [
        ("", "KEYRING_EMPTY", []),
        ("  ", "KEYRING_EMPTY", []),
        (b64(K1), "KEYRING_MALFORMED_ENTRY", [K1]),
        (f"{b64(K1)}:k1", "KEYRING_BAD_KEY_ID", [K1]),
        (f":{b64(K1)}", "KEYRING_BAD_KEY_ID", [K1]),
        (f"k1:{b64(K1)},", "KEYRING_MALFORMED_ENTRY", [K1]),
        (f"k1:{b64(SHORT)}", "KEYRING_BAD_KEY_LENGTH", [SHORT]),
        (f"k1:{b64(LONG)}", "KEYRING_BAD_KEY_LENGTH", [LONG]),
        (f"k1:{b64(K1)[:-1]}", "KEYRING_BAD_KEY_ENCODING", [K1]),
        (f"k1:{URLSAFE}", "KEYRING_BAD_KEY_ENCODING", [URLSAFE_KEY]),
        (f"k1:{b64(K1)},k1:{b64(K2)}", "KEYRING_DUPLICATE_KEY_ID", [K1, K2]),
        (f"k2:{b64(K2)},k1:{b64(SHORT)}", "KEYRING_BAD_KEY_LENGTH", [K2, SHORT]),
    ],
)
def test_keyring_errors_never_show_key_material(
    config: str, reason: str, secrets: list[bytes]
) -> None:
    with pytest.raises(KeyRingError) as excinfo:
        KeyRing.parse(config)
    assert excinfo.value.reason == reason
    shown = "".join(traceback.format_exception(excinfo.value)) + repr(excinfo.value)
    for secret in secrets:
        for encoded in (b64(secret), base64.urlsafe_b64encode(secret).decode("ascii")):
            assert encoded[:12] not in shown
        assert secret.hex()[:16] not in shown


def test_keyring_from_pairs_validates_too() -> None:
    with pytest.raises(KeyRingError) as excinfo:
        KeyRing([])
    assert excinfo.value.reason == "KEYRING_EMPTY"
    with pytest.raises(KeyRingError) as excinfo:
        KeyRing([("k1", K1), ("k1", K2)])
    assert excinfo.value.reason == "KEYRING_DUPLICATE_KEY_ID"
    with pytest.raises(KeyRingError, match="16-byte key") as excinfo:
        KeyRing([("k1", K1[:16])])
    assert excinfo.value.reason == "KEYRING_BAD_KEY_LENGTH"
    with pytest.raises(KeyRingError) as excinfo:
        KeyRing([("a-very-long-key-id", K1)])
    assert excinfo.value.reason == "KEYRING_BAD_KEY_ID"
