"""Signed checkpoints: C2SP signed-note format, Ed25519 keys and tlog-checkpoint bodies.

The PeterNeumann key and note are the published example of Go's golang.org/x/mod/sumdb/note
package, so matching them byte for byte shows interoperability with the Go tooling.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from openloop_ledger.merkle import hashing
from openloop_ledger.merkle.note import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    generate_signer_key,
    open_checkpoint,
    sign_checkpoint,
    sign_note,
    signed_text,
    verifiers_from_keys,
    verify_note,
)

GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

ORIGIN = "ledger.openloop.dev/log"
ROOT = hashing.node_hash(hashing.leaf_hash(b"a"), hashing.leaf_hash(b"b"))


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.from_key(generate_signer_key(ORIGIN))


@pytest.fixture(scope="module")
def verifier(signer: Signer) -> Verifier:
    return Verifier.from_key(signer.verifier_key())


# --- interoperability with Go's note package ------------------------------------------------


def test_go_example_note_is_reproduced_and_opens() -> None:
    signer = Signer.from_key(GO_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.verifier_key() == GO_VKEY
    assert sign_note(GO_TEXT, signer) == GO_NOTE
    verifier = Verifier.from_key(GO_VKEY)
    assert verifier.key() == GO_VKEY
    assert verify_note(GO_NOTE, verifier) == GO_TEXT
    assert verify_note(GO_NOTE.encode(), verifier) == GO_TEXT
    with pytest.raises(NoteError, match="invalid signature"):
        verify_note(GO_NOTE.replace("cryptography", "cryptographY"), verifier)


def test_go_verifier_key_manglings_are_rejected() -> None:
    for i in range(len(GO_VKEY)):
        for j in range(i + 1, len(GO_VKEY) + 1):
            if (i, j) != (0, len(GO_VKEY)):
                with pytest.raises(NoteError):
                    Verifier.from_key(GO_VKEY[i:j])
    for i, c in enumerate(GO_VKEY):
        with pytest.raises(NoteError):
            Verifier.from_key(GO_VKEY[:i] + chr(ord(c) + 1) + GO_VKEY[i + 1 :])


# --- key strings -----------------------------------------------------------------------------


def test_generated_key_strings_have_the_go_layout(signer: Signer) -> None:
    skey = generate_signer_key("example.com/log")
    priv, key, name, hash_text, key_data = skey.split("+", 4)
    assert (priv, key, name) == ("PRIVATE", "KEY", "example.com/log")
    seed = base64.b64decode(key_data)
    assert len(seed) == 33
    assert seed[0] == 0x01
    vkey = Signer.from_key(skey).verifier_key()
    vname, vhash, vdata = vkey.split("+", 2)
    public = base64.b64decode(vdata)
    assert (vname, vhash) == (name, hash_text)
    assert public[0] == 0x01
    assert len(public) == 33
    expected_hash = hashlib.sha256(name.encode() + b"\n\x01" + public[1:]).digest()[:4]
    assert hash_text == expected_hash.hex()
    assert generate_signer_key("example.com/log") != skey


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "junk",
        "PRIVATE+KEY",
        "PRIVATE+KEY+name+c74f20a3",
        "PUBLIC+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+0xc74f20+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AoEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF",
        "PRIVATE+KEY+Peter Neumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY++c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        GO_VKEY,
    ],
)
def test_signer_key_junk_is_rejected(junk: str) -> None:
    with pytest.raises(NoteError):
        Signer.from_key(junk)


def test_verifier_key_rejects_a_signer_key_and_vice_versa() -> None:
    with pytest.raises(NoteError):
        Verifier.from_key(GO_SKEY)
    with pytest.raises(NoteError):
        Signer.from_key(GO_VKEY)
    with pytest.raises(NoteError, match="invalid key name"):
        generate_signer_key("has space")
    with pytest.raises(NoteError, match="invalid key name"):
        generate_signer_key("a+b")


def test_signer_repr_does_not_leak_the_private_key() -> None:
    signer = Signer.from_key(GO_SKEY)
    assert "AYEKFALV" not in repr(signer)
    assert repr(signer) == "Signer('PeterNeumann', key_hash=c74f20a3)"


# --- checkpoints -----------------------------------------------------------------------------


def test_checkpoint_body_format() -> None:
    cp = Checkpoint(ORIGIN, 20852163, ROOT)
    assert cp.body() == f"{ORIGIN}\n20852163\n{base64.b64encode(ROOT).decode()}\n"
    assert Checkpoint.parse(cp.body()) == cp
    empty = Checkpoint(ORIGIN, 0, hashing.EMPTY_ROOT)
    assert empty.body() == f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"


def test_signed_checkpoint_round_trip_and_layout(signer: Signer, verifier: Verifier) -> None:
    cp = Checkpoint(ORIGIN, 42, ROOT)
    note = sign_checkpoint(cp, signer)
    body, sig_block = note.split("\n\n")
    assert body + "\n" == cp.body()
    prefix = f"\u2014 {ORIGIN} "
    assert sig_block.startswith(prefix)
    assert sig_block.endswith("\n")
    assert sig_block.count("\n") == 1
    blob = base64.b64decode(sig_block[len(prefix) : -1])
    assert len(blob) == 4 + 64
    assert int.from_bytes(blob[:4], "big") == signer.key_hash == verifier.key_hash
    public = base64.b64decode(verifier.key().split("+", 2)[2])[1:]
    Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], cp.body().encode())
    assert open_checkpoint(note, verifier) == cp
    assert open_checkpoint(note, verifier, origin=ORIGIN) == cp
    with pytest.raises(NoteError, match="origin"):
        open_checkpoint(note, verifier, origin="other.example/log")


def test_flipping_any_character_of_a_signed_checkpoint_fails(
    signer: Signer, verifier: Verifier
) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 123456, ROOT), signer)
    for i, c in enumerate(note):
        for replacement in {chr(ord(c) ^ 1), chr(ord(c) ^ 0x20), "A" if c != "A" else "B"}:
            tampered = note[:i] + replacement + note[i + 1 :]
            with pytest.raises(NoteError):
                open_checkpoint(tampered, verifier)


def test_same_name_other_key_is_ignored(signer: Signer, verifier: Verifier) -> None:
    impostor = Signer.from_key(generate_signer_key(ORIGIN))
    assert impostor.name == signer.name
    cp = Checkpoint(ORIGIN, 7, ROOT)
    with pytest.raises(NoteError, match="no signature by key"):
        open_checkpoint(sign_checkpoint(cp, impostor), verifier)
    assert open_checkpoint(sign_checkpoint(cp, impostor, signer), verifier) == cp
    assert open_checkpoint(sign_checkpoint(cp, signer, impostor), verifier) == cp


def test_a_forged_signature_under_the_right_key_id_rejects_the_note(
    signer: Signer, verifier: Verifier
) -> None:
    cp = Checkpoint(ORIGIN, 7, ROOT)
    good = sign_checkpoint(cp, signer)
    forged_blob = signer.key_hash.to_bytes(4, "big") + bytes(64)
    forged = f"\u2014 {ORIGIN} {base64.b64encode(forged_blob).decode()}\n"
    with pytest.raises(NoteError, match="invalid signature"):
        open_checkpoint(good + forged, verifier)


def test_a_rotated_log_verifies_under_its_old_and_new_keys(
    signer: Signer, verifier: Verifier
) -> None:
    new = Signer.from_key(generate_signer_key(ORIGIN))
    cp = Checkpoint(ORIGIN, 7, ROOT)
    old_only, both, new_only = (
        sign_checkpoint(cp, signer),
        sign_checkpoint(cp, new, signer),
        sign_checkpoint(cp, new),
    )
    keys = [verifier, new.verifier()]
    for note in (old_only, both, new_only):
        assert open_checkpoint(note, *keys) == cp
    assert [v.key_hash for v in signed_text(both, keys)[1]] == [new.key_hash, signer.key_hash]
    assert signed_text(new_only, keys)[1][0].key_hash == new.key_hash
    # An auditor who has only one of the keys still needs a signature by that key.
    with pytest.raises(NoteError, match=re.escape(f"no signature by key {new.verifier().key_id}")):
        open_checkpoint(old_only, new.verifier())
    assert open_checkpoint(both, verifier) == cp


def test_a_bad_signature_by_any_trusted_key_rejects_the_note(
    signer: Signer, verifier: Verifier
) -> None:
    new = Signer.from_key(generate_signer_key(ORIGIN))
    good = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), new)
    forged_blob = signer.key_hash.to_bytes(4, "big") + bytes(64)
    forged = good + f"\u2014 {ORIGIN} {base64.b64encode(forged_blob).decode()}\n"
    assert open_checkpoint(forged, new.verifier()) == Checkpoint(ORIGIN, 7, ROOT)
    with pytest.raises(NoteError, match="invalid signature"):
        open_checkpoint(forged, new.verifier(), verifier)
    with pytest.raises(ValueError, match="at least one verifier"):
        verify_note(good)


def test_verifier_keys_come_one_by_one_or_in_one_list(verifier: Verifier) -> None:
    other = Signer.from_key(generate_signer_key(ORIGIN)).verifier_key()
    expected = [verifier.key(), other]
    for given in (
        [verifier.key(), other],
        f"{verifier.key()},{other}",
        f" {verifier.key()}\n {other} ,",
        [f"{verifier.key()},{other}", other],
    ):
        assert [v.key() for v in verifiers_from_keys(given)] == expected
    with pytest.raises(NoteError, match="no verifier key"):
        verifiers_from_keys(" , ")
    with pytest.raises(NoteError):
        verifiers_from_keys(f"{verifier.key()},not-a-key")


def test_checkpoint_with_extension_lines(signer: Signer, verifier: Verifier) -> None:
    cp = Checkpoint(ORIGIN, 9, ROOT, ("ext one", "ext-two"))
    assert cp.body().endswith("\next one\next-two\n")
    assert open_checkpoint(sign_checkpoint(cp, signer), verifier) == cp


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}",
        f"{ORIGIN}\n5\n",
        f"\n5\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n05\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n+5\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n-1\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n5a\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n 5\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n\u0665\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n{2**64}\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n5\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"{ORIGIN}\n5\n{base64.b64encode(ROOT + b'x').decode()}\n",
        f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode().rstrip('=')}\n",
        f"{ORIGIN}\n5\nnot base64!\n",
        f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\n\next\n",
    ],
)
def test_malformed_checkpoint_bodies_are_rejected(body: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(body)


def test_signed_but_malformed_body_is_rejected(signer: Signer, verifier: Verifier) -> None:
    for text in [f"{ORIGIN}\nfive\n{base64.b64encode(ROOT).decode()}\n", f"{ORIGIN}\n5\nAAAA\n"]:
        note = sign_note(text, signer)
        assert verify_note(note, verifier) == text
        with pytest.raises(NoteError):
            open_checkpoint(note, verifier)


def test_checkpoint_construction_validates_fields() -> None:
    with pytest.raises(NoteError):
        Checkpoint("", 1, ROOT)
    with pytest.raises(NoteError):
        Checkpoint("a\nb", 1, ROOT)
    with pytest.raises(NoteError):
        Checkpoint(ORIGIN, -1, ROOT)
    with pytest.raises(NoteError):
        Checkpoint(ORIGIN, 1, ROOT[:16])
    with pytest.raises(NoteError):
        Checkpoint(ORIGIN, 1, ROOT, ("",))
    with pytest.raises(NoteError):
        Checkpoint("tab\there", 1, ROOT)


# --- note envelope ---------------------------------------------------------------------------


def test_malformed_notes_are_rejected(signer: Signer, verifier: Verifier) -> None:
    text = Checkpoint(ORIGIN, 3, ROOT).body()
    good = sign_note(text, signer)
    sig_line = good[len(text) + 1 :]
    bad_notes: list[str | bytes] = [
        text,
        text + "\n",
        text + sig_line,
        good[:-1],
        good + "\n",
        text + "\n" + sig_line.replace("\u2014", "--"),
        text + "\n" + sig_line.replace(f"{ORIGIN} ", f"{ORIGIN}  "),
        text + "\n" + sig_line.replace(" ", "\t", 1),
        text + "\n" + f"\u2014 {ORIGIN} AAAA\n",
        good.replace("\n3\n", "\n3\r\n"),
        good + sig_line * 100,
        good.encode()[:-5] + b"\xff\xfe\n",
    ]
    for note in bad_notes:
        with pytest.raises(NoteError):
            verify_note(note, verifier)
    assert verify_note(good + sig_line * 99, verifier) == text
    with pytest.raises(NoteError, match="end with a newline"):
        sign_note("no newline", signer)
    with pytest.raises(ValueError, match="at least one signer"):
        sign_note(text)
