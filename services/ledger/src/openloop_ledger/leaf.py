"""The canonical, versioned encoding of a committed transfer as a Merkle leaf.

``openloop.ledger.leaf.v1`` is a fixed binary layout, big-endian::

    version        u8   = 1
    position       u64  journal position (= leaf index): a moved row no longer matches
    create_time    i64  microseconds since the Unix epoch, UTC
    flags          u16  TigerBeetle's transfer flag bits
    ledger         u32
    code           u32
    timeout        u32  seconds
    amount         u64  satang actually moved or reserved
    id             u8 length + UTF-8
    pending_id     u8 length + UTF-8 (empty when not a post or void)
    debit_account  32   HMAC-SHA256(key, b"account\\x00" + id)
    credit_account 32   HMAC-SHA256(key, b"account\\x00" + id)
    user_data      32   HMAC-SHA256(key, b"user_data\\x00" + user_data)

Account ids and user data can point at a citizen (``citizens:...``,
``payments/...``), so the log carries them only as keyed hashes: whoever holds
the leaf key (the ledger and auditors) can recompute and check every leaf, while
a published proof reveals nothing about the person. Transfer ids are clear so a
bank can find its own transfers; clients must not put personal data in them.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

from openloop_ledger.model import Transfer

VERSION = 1
_FIXED = struct.Struct(">BQqHIIIQ")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class LeafEncoder:
    """Encodes transfers under one leaf key, remembering the keyed hashes it computed.

    Account ids repeat across millions of transfers, so the cache turns most keyed
    hashes into a dict lookup (bounded: it is cleared when it grows past ``cache_size``).
    The sealer and the verifier call :meth:`encode_row` for every journal entry, so it
    takes plain positional values and avoids any per-call allocation it can.
    """

    def __init__(self, key: bytes, *, cache_size: int = 200_000) -> None:
        if len(key) < 16:
            raise ValueError("the leaf key must be at least 16 bytes")
        self._key = key
        self._accounts: dict[str, bytes] = {}
        self._user_data: dict[str, bytes] = {}
        self._cache_size = cache_size

    def _keyed(self, cache: dict[str, bytes], domain: bytes, value: str) -> bytes:
        if len(cache) >= self._cache_size:
            cache.clear()
        digest = cache[value] = hmac.digest(
            self._key, domain + b"\x00" + value.encode(), hashlib.sha256
        )
        return digest

    def account_hash(self, account_id: str) -> bytes:
        cached = self._accounts.get(account_id)
        return cached if cached is not None else self._keyed(self._accounts, b"account", account_id)

    def user_data_hash(self, user_data: str) -> bytes:
        cached = self._user_data.get(user_data)
        if cached is not None:
            return cached
        return self._keyed(self._user_data, b"user_data", user_data)

    def encode(self, transfer: Transfer) -> bytes:
        spec = transfer.spec
        return self.encode_row(
            transfer.position,
            transfer.create_time,
            spec.flags.bits(),
            spec.ledger,
            spec.code,
            spec.timeout,
            spec.amount,
            spec.id,
            spec.pending_id,
            spec.debit_account_id,
            spec.credit_account_id,
            spec.user_data,
        )

    def encode_row(  # noqa: PLR0917 - one positional value per leaf field, for speed
        self,
        position: int,
        create_time: datetime | int,
        flags: int,
        ledger: int,
        code: int,
        timeout: int,
        amount: int,
        transfer_id: str,
        pending_id: str | None,
        debit_account_id: str,
        credit_account_id: str,
        user_data: str,
    ) -> bytes:
        """The leaf of one transfer row, from its raw column values.

        ``create_time`` may be given as microseconds since the Unix epoch, as the verifier's
        database connection decodes it (see :func:`epoch_micros_codec`).
        """
        micros = (
            create_time if isinstance(create_time, int) else (create_time - _EPOCH) // _MICROSECOND
        )
        id_bytes = transfer_id.encode()
        pending_bytes = pending_id.encode() if pending_id else b""
        accounts = self._accounts
        debit = accounts.get(debit_account_id) or self.account_hash(debit_account_id)
        credit = accounts.get(credit_account_id) or self.account_hash(credit_account_id)
        return b"".join(
            (
                _FIXED.pack(VERSION, position, micros, flags, ledger, code, timeout, amount),
                _LENGTHS[len(id_bytes)],
                id_bytes,
                _LENGTHS[len(pending_bytes)],
                pending_bytes,
                debit,
                credit,
                self.user_data_hash(user_data),
            )
        )


_POSITION = slice(1, 9)
"""Where ``position`` lies in a v1 leaf (after the version byte)."""


def leaf_at(leaf: bytes, position: int) -> bytes:
    """The same v1 leaf as if its row stood at ``position``.

    Everything else in a leaf is independent of where the row stands, so the verifier
    asks "was this row sealed at another position?" by patching eight bytes instead of
    encoding the row again (keyed hashes included) for each position it tries.
    """
    return b"".join((leaf[: _POSITION.start], position.to_bytes(8, "big"), leaf[_POSITION.stop :]))


_POSTGRES_EPOCH_MICROS = 946_684_800_000_000
"""PostgreSQL counts timestamps from 2000-01-01 UTC."""


async def epoch_micros_codec(conn: Any) -> None:
    """Make an asyncpg connection decode ``timestamptz`` as int microseconds since the Unix
    epoch: exact, and far cheaper than building a datetime for every journal row."""
    await conn.set_type_codec(
        "timestamptz",
        schema="pg_catalog",
        encoder=lambda micros: (micros - _POSTGRES_EPOCH_MICROS,),
        decoder=lambda value: value[0] + _POSTGRES_EPOCH_MICROS,
        format="tuple",
    )


def decode_fixed(leaf: bytes) -> dict[str, int]:
    """The clear numeric fields of a v1 leaf, for a bank checking a proof's leaf."""
    version, position, micros, flags, ledger, code, timeout, amount = _FIXED.unpack_from(leaf)
    if version != VERSION:
        raise ValueError(f"leaf version {version} is not {VERSION}")
    return {
        "position": position,
        "create_time_micros": micros,
        "flags": flags,
        "ledger": ledger,
        "code": code,
        "timeout": timeout,
        "amount": amount,
    }


_MICROSECOND = timedelta(microseconds=1)
_LENGTHS = [n.to_bytes(1, "big") for n in range(256)]
