"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes, signed with Ed25519.

A checkpoint commits the log to a tree size and root. The sealer signs one each time it
seals (at most once per checkpoint interval) and auditors verify it, then check
consistency proofs between checkpoints. The text formats
(note, signature line, key strings) match Go's ``golang.org/x/mod/sumdb/note`` so that
standard transparency tooling can read what the ledger publishes.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from hashlib import sha256

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from openloop_ledger.merkle.hashing import HASH_SIZE

ALG_ED25519 = 0x01
"""The signed-note signature type byte of Ed25519."""

MAX_SIGNATURES = 100
"""Notes with more signature lines than this are rejected as malformed."""

_SIG_PREFIX = "\u2014 "
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_MAX_SIZE = (1 << 64) - 1


class NoteError(ValueError):
    """A note, checkpoint or key string is malformed, unsigned by the key, or badly signed."""


def _is_valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() or c < " " for c in name)


def _key_hash(name: str, public_key: bytes) -> int:
    digest = sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _b64decode(text: str) -> bytes:
    """Strict standard base64: padded, and canonical so no value has two spellings."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NoteError(f"invalid base64: {text!r}") from exc
    if _b64encode(data) != text:
        raise NoteError(f"non-canonical base64: {text!r}")
    return data


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _check_text(text: str) -> None:
    if any(c < " " and c != "\n" for c in text):
        raise NoteError("note contains an ASCII control character other than newline")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: log ``origin``, tree ``size`` and RFC 6962 ``root``.

    ``extensions`` are the optional extra body lines of the tlog-checkpoint format; the
    ledger writes none but accepts them when parsing.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise NoteError("checkpoint origin must be one non-empty line")
        _check_text(self.origin)
        if not 0 <= self.size <= _MAX_SIZE:
            raise NoteError(f"checkpoint size {self.size} is out of range")
        if len(self.root) != HASH_SIZE:
            raise NoteError(f"checkpoint root is {len(self.root)} bytes, not {HASH_SIZE}")
        for line in self.extensions:
            if not line or "\n" in line:
                raise NoteError("checkpoint extension lines must be non-empty single lines")
            _check_text(line)

    def body(self) -> str:
        """The note text: ``origin\\nsize\\nbase64(root)\\n`` then any extension lines."""
        lines = [self.origin, str(self.size), _b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Parse a checkpoint body (the text of a note, not yet verified by itself)."""
        if not body.endswith("\n"):
            raise NoteError("checkpoint body must end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError(f"checkpoint body has {len(lines)} lines, needs at least 3")
        origin, size_text, root_text, *extensions = lines
        if not _DECIMAL.fullmatch(size_text):
            raise NoteError(f"checkpoint size {size_text!r} is not a canonical decimal")
        return cls(origin, int(size_text), _b64decode(root_text), tuple(extensions))


class Verifier:
    """Checks Ed25519 note signatures by one named key."""

    __slots__ = ("_public", "key_hash", "name")

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        if not _is_valid_name(name):
            raise NoteError(f"invalid key name {name!r}")
        self.name = name
        self._public = public_key
        self.key_hash = _key_hash(name, _raw_public(public_key))

    @classmethod
    def from_key(cls, key: str) -> Verifier:
        """Parse a verifier key ``name+hex8keyhash+base64(0x01 || public key)``."""
        parts = key.split("+", 2)  # the base64 key data may itself contain "+"
        if len(parts) != 3:
            raise NoteError("verifier key must be name+keyhash+keydata")
        name, hash_text, key_text = parts
        raw = _parse_key_parts(name, hash_text, key_text)
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(raw))
        if verifier.key_hash != int(hash_text, 16):
            raise NoteError("verifier key hash does not match the key")
        return verifier

    @property
    def key_id(self) -> str:
        """``name+keyhash``: which key this is, as a report names it (no key material)."""
        return f"{self.name}+{self.key_hash:08x}"

    def key(self) -> str:
        """This verifier's key string (what ``Signer.verifier_key`` returns)."""
        data = bytes([ALG_ED25519]) + _raw_public(self._public)
        return f"{self.name}+{self.key_hash:08x}+{_b64encode(data)}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (without the key-hash prefix) signs ``text`` with this key."""
        try:
            self._public.verify(signature, text)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"Verifier({self.name!r}, key_hash={self.key_hash:08x})"


def verifiers_from_keys(keys: str | Iterable[str]) -> list[Verifier]:
    """Verifiers for verifier keys given one by one, or several in one string separated by
    commas or whitespace (as an environment variable holds them); duplicates are dropped.
    A key string holds neither, so the split is unambiguous."""
    texts = [keys] if isinstance(keys, str) else list(keys)
    parsed: dict[str, Verifier] = {}
    for text in texts:
        for key in _KEY_SEPARATORS.split(text.strip()):
            if key and key not in parsed:
                parsed[key] = Verifier.from_key(key)
    if not parsed:
        raise NoteError("no verifier key given")
    return list(parsed.values())


_KEY_SEPARATORS = re.compile(r"[\s,]+")


def _parse_key_parts(name: str, hash_text: str, key_text: str) -> bytes:
    if not _is_valid_name(name):
        raise NoteError(f"invalid key name {name!r}")
    if not _HEX8.fullmatch(hash_text):
        raise NoteError("key hash must be 8 hex digits")
    data = _b64decode(key_text)
    if len(data) != 33:
        raise NoteError(f"key data is {len(data)} bytes, expected 33")
    if data[0] != ALG_ED25519:
        raise NoteError(f"unsupported key algorithm {data[0]:#04x}")
    return data[1:]


class Signer:
    """Signs notes with one named Ed25519 key. Never prints the private key."""

    __slots__ = ("_private", "key_hash", "name")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not _is_valid_name(name):
            raise NoteError(f"invalid key name {name!r}")
        self.name = name
        self._private = private_key
        self.key_hash = _key_hash(name, _raw_public(private_key.public_key()))

    @classmethod
    def from_key(cls, key: str) -> Signer:
        """Parse a signer key ``PRIVATE+KEY+name+hex8keyhash+base64(0x01 || seed)``."""
        parts = key.split("+", 4)  # the base64 key data may itself contain "+"
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise NoteError("signer key must be PRIVATE+KEY+name+keyhash+keydata")
        _, _, name, hash_text, key_text = parts
        seed = _parse_key_parts(name, hash_text, key_text)
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if signer.key_hash != int(hash_text, 16):
            raise NoteError("signer key hash does not match the key")
        return signer

    def verifier(self) -> Verifier:
        """The verifier for this signer's signatures."""
        return Verifier(self.name, self._private.public_key())

    def verifier_key(self) -> str:
        """The public verifier key string to hand to auditors."""
        return self.verifier().key()

    def signature_line(self, text: str) -> str:
        """The note signature line ``— name base64(keyhash || signature)\\n`` over ``text``."""
        signature = self._private.sign(text.encode())
        return (
            f"{_SIG_PREFIX}{self.name} {_b64encode(self.key_hash.to_bytes(4, 'big') + signature)}\n"
        )

    def __repr__(self) -> str:
        return f"Signer({self.name!r}, key_hash={self.key_hash:08x})"


def generate_signer_key(name: str) -> str:
    """A new random Ed25519 signer key string for key ``name`` (keep it secret)."""
    if not _is_valid_name(name):
        raise NoteError(f"invalid key name {name!r}")
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    key_hash = _key_hash(name, _raw_public(private.public_key()))
    return f"PRIVATE+KEY+{name}+{key_hash:08x}+{_b64encode(bytes([ALG_ED25519]) + seed)}"


def sign_note(text: str, *signers: Signer) -> str:
    """The signed note: ``text`` (ending in a newline), a blank line, one line per signer."""
    if not signers:
        raise ValueError("a note needs at least one signer")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    _check_text(text)
    return text + "\n" + "".join(signer.signature_line(text) for signer in signers)


def sign_checkpoint(checkpoint: Checkpoint, *signers: Signer) -> str:
    """The checkpoint as a signed note."""
    return sign_note(checkpoint.body(), *signers)


def verify_note(note: str | bytes, *verifiers: Verifier) -> str:
    """The text of ``note`` once a signature by one of ``verifiers``' keys has verified.

    Signatures by other keys (another name, or the same name with another key hash) are
    ignored. Raises ``NoteError`` if the note is malformed, a signature by one of these
    keys fails, or there is none.
    """
    return signed_text(note, verifiers)[0]


def signed_text(note: str | bytes, verifiers: Sequence[Verifier]) -> tuple[str, list[Verifier]]:
    """The text of ``note`` and which of ``verifiers`` signed it (at least one), in the
    order of its signature lines; raises ``NoteError`` as :func:`verify_note` does.

    Several keys are how a log rotates its key: an auditor trusts the old and the new
    key, and a note signed by either (or, during the switch, both) verifies.
    """
    if not verifiers:
        raise ValueError("verifying a note needs at least one verifier key")
    text, lines = _split_note(note)
    known = {(verifier.name, verifier.key_hash): verifier for verifier in verifiers}
    text_bytes = text.encode()
    signers: list[Verifier] = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise NoteError(f"malformed signature line {line!r}")
        name, sep, sig_text = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep or not _is_valid_name(name) or not sig_text:
            raise NoteError(f"malformed signature line {line!r}")
        sig = _b64decode(sig_text)
        if len(sig) < 5:
            raise NoteError(f"signature in line {line!r} is too short")
        verifier = known.get((name, int.from_bytes(sig[:4], "big")))
        if verifier is None:
            continue
        if not verifier.verify(text_bytes, sig[4:]):
            raise NoteError(f"invalid signature by key {verifier.key_id}")
        if verifier not in signers:
            signers.append(verifier)
    if not signers:
        raise NoteError(f"note has no signature by key {', '.join(v.key_id for v in verifiers)}")
    return text, signers


def _split_note(note: str | bytes) -> tuple[str, list[str]]:
    """A note's text and its signature lines, unchecked."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("note is not valid UTF-8") from exc
    _check_text(note)
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteError("note has no signature block after a blank line")
    text, block = note[: split + 1], note[split + 2 :]
    lines = block[:-1].split("\n") if block else []
    if not lines:
        raise NoteError("note has no signature lines")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    return text, lines


def checkpoint_origin(note: str) -> str:
    """The origin of a signed checkpoint: its first line, read without verifying the
    signature (for the ledger's own stored checkpoints, whose signer it need not hold)."""
    return note.split("\n", 1)[0]


def open_checkpoint(
    note: str | bytes, *verifiers: Verifier, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint (by any of ``verifiers``) and parse it; if ``origin`` is
    given it must match too."""
    checkpoint = Checkpoint.parse(verify_note(note, *verifiers))
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint
