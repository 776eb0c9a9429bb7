"""Verifies a ledger end to end from its rows: leaves, checkpoints, signatures, balances.

The verifier trusts only the log's public key and the leaf key. It streams the
transfer rows in position order, recomputes each leaf and the tree, and checks
every signed checkpoint's root at its size. The sealed leaf hashes (level-0
tiles), when available, let it name the exact row that differs; a signed root
that no longer matches proves tampering even if the tiles were rewritten too.
Finally it replays every balance from the transfers and compares the accounts,
and recomputes each account's MAC (:mod:`openloop_ledger.account_mac`) to name
an account whose immutable columns were changed or that the ledger never created.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openloop_ledger.account_mac import mac_of_row
from openloop_ledger.audit.replay import TWO_PHASE, Replay
from openloop_ledger.leaf import LeafEncoder
from openloop_ledger.merkle.hashing import HASH_SIZE, leaf_hash
from openloop_ledger.merkle.note import (
    Checkpoint,
    NoteError,
    Verifier,
    open_checkpoint,
    signed_text,
)
from openloop_ledger.merkle.tiles import TILE_WIDTH
from openloop_ledger.merkle.tree import CompactTree
from openloop_ledger.pg import TRANSFER_COLUMNS, leaf_of_row

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    position: int
    """Journal position the finding is about; accounts and checkpoints sort after rows."""
    rank: int
    """At one position, what a row shows (0) comes before the checkpoint it breaks (1)."""
    kind: str
    """changed, deleted, inserted, reordered, checkpoint, balance, account."""
    message: str


@dataclass(slots=True)
class Report:
    leaves: int = 0
    checkpoints_verified: int = 0
    checkpoints_by_key: dict[str, int] = field(default_factory=dict)
    """Verified checkpoints per signing key (``name+keyhash``): a rotated log shows each
    key and how many checkpoints it signed."""
    accounts_verified: int = 0
    unsealed: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        return min(self.findings) if self.findings else None


_NOT_A_ROW = 2**63
"""Sort key for findings that are not about one journal row."""


@dataclass(frozen=True, slots=True)
class RangeDigest:
    """What a worker computes from a range of journal rows, for :meth:`feed_digest`."""

    runs: list[tuple[int, bytes]]
    """Contiguous runs of rows: (first position, concatenated leaf hashes)."""
    plain_totals: list[tuple[str, int, int]]
    """Per account, the debits and credits of the range's plain (single-phase) transfers."""
    two_phase: list[tuple[str, str, str, int, int, str | None]]
    """Pending, post and void rows in order, as :meth:`Replay.apply` arguments."""


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    tree_size: int
    root_hash: bytes
    signed_note: str


def trusted_checkpoints(
    notes: Sequence[str], verifiers: Sequence[Verifier]
) -> list[SignedCheckpoint]:
    """Checkpoints an auditor saved earlier (signed notes), checked against the log keys."""
    trusted = []
    for note in notes:
        body = open_checkpoint(note, *verifiers)
        trusted.append(SignedCheckpoint(body.size, body.root, note))
    return trusted


class LedgerVerifier:
    def __init__(
        self,
        encoder: LeafEncoder,
        verifiers: Sequence[Verifier],
        checkpoints: Iterable[SignedCheckpoint],
        *,
        mac_key: bytes,
        sealed_tiles: Mapping[int, bytes] | None = None,
    ) -> None:
        self._encoder = encoder
        self._mac_key = mac_key
        """The leaf key, under which every account row carries a MAC."""
        self._sealed_tiles = sealed_tiles or {}
        """Level-0 tiles by index: the leaf hashes the sealer recorded."""
        self._tree = CompactTree()
        self._replay = Replay()
        self._expected = 0
        self._mismatched: list[tuple[int, Row]] = []
        self._mismatched_positions: list[int] = []
        self._pending_rows_wanted: list[int] = []
        self.report = Report()
        self._checkpoints = self._open(verifiers, checkpoints)
        self._next = 0

    def _open(
        self, verifiers: Sequence[Verifier], checkpoints: Iterable[SignedCheckpoint]
    ) -> list[SignedCheckpoint]:
        """The checkpoints signed by one of ``verifiers``' keys whose notes match their rows."""
        opened = []
        by_key = self.report.checkpoints_by_key
        for checkpoint in sorted(checkpoints, key=lambda c: c.tree_size):
            try:
                text, signers = signed_text(checkpoint.signed_note, verifiers)
                body = Checkpoint.parse(text)
            except NoteError as error:
                self._find(_NOT_A_ROW, "checkpoint", f"checkpoint {checkpoint.tree_size}: {error}")
                continue
            if body.size != checkpoint.tree_size or body.root != checkpoint.root_hash:
                self._find(
                    _NOT_A_ROW,
                    "checkpoint",
                    f"checkpoint row {checkpoint.tree_size} differs from its signed note "
                    f"(size {body.size})",
                )
                continue
            opened.append(checkpoint)
            for signer in signers:
                by_key[signer.key_id] = by_key.get(signer.key_id, 0) + 1
        self.report.checkpoints_verified = len(opened)
        return opened

    def _find(self, position: int, kind: str, message: str) -> None:
        rank = 1 if kind in {"checkpoint", "balance", "account"} else 0
        self.report.findings.append(Finding(position, rank, kind, message))

    def feed(self, rows: Iterable[Row]) -> None:
        """Transfer rows in position order (any chunking)."""
        rows = list(rows)
        self.feed_digest(digest_rows(self._encoder, rows))
        if self._pending_rows_wanted:
            wanted = set(self._pending_rows_wanted)
            self.add_mismatched_rows(row for row in rows if row["position"] in wanted)
            self._pending_rows_wanted.clear()

    def feed_digest(self, digest: RangeDigest) -> None:
        """A range hashed elsewhere (another process): its leaf hashes and replay inputs."""
        tree = self._tree
        for start, hashes in digest.runs:
            if start != self._expected:
                self._gap(start)
                self._expected = start
            end = start + len(hashes) // HASH_SIZE
            self._compare_with_sealed(start, hashes)
            position = start
            while position < end:
                # Up to the next checkpoint size in one go, then check that root.
                stop = min(end, self._next_root_size())
                tree.extend_concatenated(
                    hashes[(position - start) * HASH_SIZE : (stop - start) * HASH_SIZE]
                )
                position = stop
                self._check_roots()
            self._expected = end
        replay = self._replay
        for account_id, debits, credits in digest.plain_totals:
            totals = replay.accounts.get(account_id) or replay.totals(account_id)
            totals.debits_posted += debits
            totals.credits_posted += credits
        for row in digest.two_phase:
            replay.apply(*row)
        self.report.leaves = tree.size

    def _compare_with_sealed(self, start: int, hashes: bytes) -> None:
        """Compare a run's leaf hashes with the sealed ones, a tile segment at a time, and
        note every position that differs (where the sealed hash is known)."""
        end = start + len(hashes) // HASH_SIZE
        position = start
        while position < end:
            tile_index, offset = divmod(position, TILE_WIDTH)
            stop = min(end, (tile_index + 1) * TILE_WIDTH)
            tile = self._sealed_tiles.get(tile_index, b"")
            sealed = tile[offset * HASH_SIZE : (offset + stop - position) * HASH_SIZE]
            first = (position - start) * HASH_SIZE
            ours = hashes[first : first + len(sealed)]
            if ours != sealed:
                for index in range(len(sealed) // HASH_SIZE):
                    piece = slice(index * HASH_SIZE, (index + 1) * HASH_SIZE)
                    if ours[piece] != sealed[piece]:
                        self._mismatched_positions.append(position + index)
                        self._pending_rows_wanted.append(position + index)
            position = stop

    def _sealed_leaf(self, position: int) -> bytes | None:
        tile_index, offset = divmod(position, TILE_WIDTH)
        sealed = self._sealed_tiles.get(tile_index, b"")[
            offset * HASH_SIZE : (offset + 1) * HASH_SIZE
        ]
        return sealed or None

    def add_mismatched_rows(self, rows: Iterable[Row]) -> None:
        """The rows at the positions ``feed_digest`` found differing from the sealed leaves."""
        self._mismatched.extend((row["position"], row) for row in rows)

    @property
    def mismatched_positions(self) -> list[int]:
        return list(self._mismatched_positions)

    def _next_root_size(self) -> int:
        if self._next < len(self._checkpoints):
            return self._checkpoints[self._next].tree_size
        return _NOT_A_ROW

    def _gap(self, position: int) -> None:
        if position > self._expected:
            self._find(
                self._expected,
                "deleted",
                f"journal positions {self._expected}..{position - 1} are missing "
                f"(rows deleted); the next row present is at {position}",
            )
        else:
            self._find(position, "inserted", f"row at position {position} is out of order")
        # Keep the tree aligned with positions so later roots are still checked per size.
        while self._tree.size < position:
            self._tree.append(hashlib.sha256(b"missing").digest())
            self._check_roots()

    def _check_roots(self) -> None:
        while self._next < len(self._checkpoints):
            checkpoint = self._checkpoints[self._next]
            if checkpoint.tree_size > self._tree.size:
                return
            if (
                checkpoint.tree_size == self._tree.size
                and self._tree.root() != checkpoint.root_hash
            ):
                self._find(
                    max(checkpoint.tree_size - 1, 0),
                    "checkpoint",
                    f"the rows no longer hash to the signed root of checkpoint "
                    f"{checkpoint.tree_size}: a row before position {checkpoint.tree_size} "
                    "was changed, deleted, inserted or reordered",
                )
            self._next += 1

    def finish(self, accounts: Iterable[Row], journal_size: int) -> Report:
        """Check the rows against the journal's size, the tail of checkpoints and balances."""
        self._classify_mismatches()
        size = self._tree.size
        if size > journal_size:
            self._find(
                journal_size,
                "inserted",
                f"{size - journal_size} rows lie beyond the journal's size {journal_size} "
                f"(first at position {journal_size})",
            )
        sealed_size = self._checkpoints[-1].tree_size if self._checkpoints else 0
        if sealed_size > size:
            self._find(
                size,
                "deleted",
                f"checkpoint {sealed_size} covers positions up to {sealed_size - 1}, "
                f"but the rows end at {size - 1}",
            )
        self.report.unsealed = max(0, size - sealed_size)
        self._check_accounts(accounts)
        self.report.findings.sort()
        return self.report

    def _classify_mismatches(self) -> None:
        encoder = self._encoder
        rows = dict(self._mismatched)
        moved: set[int] = set()
        for position, row in self._mismatched:
            for other in rows:
                if other != position and self._sealed_leaf(other) == leaf_hash(
                    leaf_of_row(encoder, {**row, "position": other})
                ):
                    self._find(
                        position,
                        "reordered",
                        f"row {row['id']!r} at position {position} was sealed at position "
                        f"{other}: rows were reordered",
                    )
                    moved.add(position)
                    break
        for position, row in self._mismatched:
            if position not in moved:
                self._find(
                    position,
                    "changed",
                    f"transfer {row['id']!r} at position {position} no longer hashes to its "
                    "sealed leaf: the row was changed",
                )

    def _check_accounts(self, accounts: Iterable[Row]) -> None:
        replayed = self._replay.accounts
        for problem in self._replay.problems:
            self._find(_NOT_A_ROW, "balance", problem)
        seen = set()
        for account in accounts:
            account_id = account["id"]
            seen.add(account_id)
            self._check_mac(account)
            totals = replayed.get(account_id)
            expected = (
                (
                    totals.debits_pending,
                    totals.debits_posted,
                    totals.credits_pending,
                    totals.credits_posted,
                )
                if totals
                else (0, 0, 0, 0)
            )
            stored = (
                account["debits_pending"],
                account["debits_posted"],
                account["credits_pending"],
                account["credits_posted"],
            )
            closed = bool(account["created_closed"]) or bool(totals and totals.closed_by)
            if stored != expected or bool(account["closed"]) != closed:
                self._find(
                    _NOT_A_ROW,
                    "balance",
                    f"account {account_id!r} holds (debits pending, posted, credits pending, "
                    f"posted) {stored}, closed={account['closed']}, but the journal gives "
                    f"{expected}, closed={closed}",
                )
            self.report.accounts_verified += 1
        for account_id in sorted(set(replayed) - seen):
            self._find(
                _NOT_A_ROW,
                "balance",
                f"the journal moves money on account {account_id!r}, which does not exist",
            )

    def _check_mac(self, account: Row) -> None:
        mac = account.get("mac")  # an export made before accounts carried MACs has none
        if mac is None:
            self._find(
                _NOT_A_ROW,
                "account",
                f"account {account['id']!r} has no MAC: it was inserted, or its MAC removed, "
                "outside the ledger (or created before the ledger's migration 0003)",
            )
        elif bytes(mac) != mac_of_row(self._mac_key, account):
            self._find(
                _NOT_A_ROW,
                "account",
                f"account {account['id']!r} no longer matches its MAC: its ledger, code, "
                "flags, hosting participant or user data was changed",
            )


def digest_rows(encoder: LeafEncoder, rows: Iterable[Row]) -> RangeDigest:
    """Leaf hashes and replay inputs of journal rows in position order (gaps allowed)."""
    runs: list[tuple[int, bytes]] = []
    hashes: list[bytes] = []
    run_start = expected = -1
    debits: dict[str, int] = {}
    credits: dict[str, int] = {}
    two_phase: list[tuple[str, str, str, int, int, str | None]] = []
    sha256 = hashlib.sha256
    encode = encoder.encode_row
    for row in rows:
        # Columns by position (TRANSFER_COLUMNS order): much cheaper than by name.
        values: Any = row if not isinstance(row, dict) else [row[c] for c in TRANSFER_COLUMNS]
        (
            transfer_id,
            position,
            debit,
            credit,
            amount,
            pending_id,
            timeout,
            flags,
            ledger,
            code,
            user_data,
            create_time,
        ) = values
        if position != expected:
            if hashes:
                runs.append((run_start, b"".join(hashes)))
            hashes = []
            run_start = position
        hashes.append(
            sha256(
                b"\x00"
                + encode(
                    position,
                    create_time,
                    flags,
                    ledger,
                    code,
                    timeout,
                    amount,
                    transfer_id,
                    pending_id,
                    debit,
                    credit,
                    user_data,
                )
            ).digest()
        )
        expected = position + 1
        if flags & TWO_PHASE:
            two_phase.append((transfer_id, debit, credit, amount, flags, pending_id))
        else:
            debits[debit] = debits.get(debit, 0) + amount
            credits[credit] = credits.get(credit, 0) + amount
    if hashes:
        runs.append((run_start, b"".join(hashes)))
    totals = [(a, debits.get(a, 0), credits.get(a, 0)) for a in debits.keys() | credits.keys()]
    return RangeDigest(runs, totals, two_phase)
