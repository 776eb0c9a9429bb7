"""Verifies a ledger end to end from its rows: leaves, checkpoints, signatures, balances.

The verifier trusts only the log's public key and the leaf key. It streams the
transfer rows in position order, recomputes each leaf and the tree, and checks
every signed checkpoint's root at its size. The sealed leaf hashes (level-0
tiles), when available, let it name the exact row that differs; a signed root
that no longer matches proves tampering even if the tiles were rewritten too. It
holds only the level-0 tiles of the rows it is hashing, read as it goes
(:mod:`openloop_ledger.audit.leaf_tiles`): 32 bytes per transfer would not fit in
memory for a national journal.
Finally it replays every balance from the transfers and compares the accounts and
the history accounts' balance rows (:mod:`openloop_ledger.audit.history`), checks
that exactly the unresolved pending transfers with a timeout have their
``pending_timeouts`` row, due when the journal says (:mod:`openloop_ledger.audit.timeouts`),
and recomputes each account's MAC (:mod:`openloop_ledger.account_mac`) to name an
account whose immutable columns were changed or that the ledger never created.

A tampered row must become a finding, never an error: a row whose values do not fit
the leaf layout (a flag beyond 16 bits, a negative amount) is reported as changed,
a row at a negative position as inserted. A checkpoint counts only if it carries the
log's origin (its keys' name), and every checkpoint the rows reach is checked at its
size or named: the tree holds exactly one leaf per position, whatever order a source
lists the rows in.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import struct
from bisect import bisect_right
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openloop_ledger.account_mac import mac_of_row
from openloop_ledger.audit import leaf_tiles
from openloop_ledger.audit.classify import MismatchClassifier
from openloop_ledger.audit.history import HistoryCheck
from openloop_ledger.audit.replay import TWO_PHASE, Replay
from openloop_ledger.audit.tiles import TileCheck
from openloop_ledger.audit.timeouts import TimeoutCheck
from openloop_ledger.leaf import LeafEncoder
from openloop_ledger.merkle.hashing import HASH_SIZE
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
    """changed, deleted, inserted, reordered, checkpoint, balance, account, tile, timeout.

    A row sealed at another position is ``reordered``, and so is one a source lists
    after a row at a higher position (an export's lines reordered). A history row
    (``account_balances``) that differs from the replay is a ``balance`` finding at its
    position; a ``pending_timeouts`` row missing, changed or extra is a
    ``timeout`` finding at its pending transfer's position."""
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
    leaf_tiles_held: int = 0
    """The most level-0 tiles held at once: at most the window, whatever the journal's size
    (see :meth:`LedgerVerifier.hold_leaf_tiles`)."""
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        return min(self.findings) if self.findings else None


_NOT_A_ROW = 2**63
"""Sort key for findings that are not about one journal row."""


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while verifying (the worker processes never collect).

    A verification allocates a row object per transfer and a few per history row, and
    builds no reference cycles: refcounting frees everything, while the collector only
    rescans the rows in flight (measured: a tenth of the verifier's time, a quarter on a
    ledger whose accounts keep history). Collection resumes as it was afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _finding(position: int, kind: str, message: str) -> Finding:
    rank = 1 if kind in {"checkpoint", "balance", "account", "tile", "timeout"} else 0
    return Finding(position, rank, kind, message)


Ordered = Sequence[Any]
"""A transfer the replay applies in order: its row's values in ``TRANSFER_COLUMNS`` order
(the row itself where it is a sequence: no copy per row)."""


@dataclass(frozen=True, slots=True)
class RangeDigest:
    """What a worker computes from a range of journal rows, for :meth:`feed_digest`."""

    runs: list[tuple[int, bytes]]
    """Contiguous runs of rows: (first position, concatenated leaf hashes)."""
    plain_totals: list[tuple[str, int, int]]
    """Per account, the debits and credits of the range's plain (single-phase) transfers
    that touch no history account."""
    ordered: list[Ordered]
    """Pending, post and void rows, and plain rows touching a history account, in order:
    their effect depends on order, or each one's balances are checked."""
    malformed: list[tuple[int, str, str]] = field(default_factory=list)
    """Rows the ledger cannot have written: (position, transfer id, why). Their leaf hash
    in ``runs`` is a placeholder that matches no sealed leaf."""
    inserted: list[tuple[int, str]] = field(default_factory=list)
    """Rows at negative positions, outside the journal: (position, transfer id). They are
    neither leaves nor replayed."""


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    tree_size: int
    root_hash: bytes
    signed_note: str
    right_edge: bytes | None = None
    """What the sealer resumes from (``None``: not stored, as for a trusted checkpoint)."""


def log_origin(verifiers: Sequence[Verifier]) -> str:
    """The log's origin, which every checkpoint it signs must carry: its keys' name.

    The sealer writes its signing key's name as the origin, and a rotated key keeps the
    log's name (:class:`openloop_ledger.config.LedgerSettings`), so the keys an auditor
    verifies one log with share it. Keys of several names are no one log's: raises
    ``NoteError``, as for a malformed key, rather than pick one."""
    names = sorted({verifier.name for verifier in verifiers})
    if len(names) != 1:
        raise NoteError(
            f"the verifier keys name {len(names)} logs ({', '.join(map(repr, names))}); "
            "one log's keys all carry its name, the origin of its checkpoints"
        )
    return names[0]


def trusted_checkpoints(
    notes: Sequence[str], verifiers: Sequence[Verifier]
) -> list[SignedCheckpoint]:
    """Checkpoints an auditor saved earlier (signed notes), checked against the log keys
    and the log's origin: a checkpoint of another log proves nothing about this one."""
    origin = log_origin(verifiers)
    trusted = []
    for note in notes:
        body = open_checkpoint(note, *verifiers, origin=origin)
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
        history_accounts: Iterable[Row] = (),
        upper_tiles: Mapping[tuple[int, int], bytes] | None = None,
        leaf_tile_window: int | None = None,
    ) -> None:
        self._encoder = encoder
        self._mac_key = mac_key
        """The leaf key, under which every account row carries a MAC."""
        self.report = Report()
        self._sealed_tiles: Mapping[int, bytes] = {}
        """Level-0 tiles by index: the leaf hashes the sealer recorded. All of them when
        given here; otherwise those of the rows being fed (:meth:`hold_leaf_tiles`)."""
        self.hold_leaf_tiles(sealed_tiles or {})
        self.leaf_tile_window = leaf_tile_window or leaf_tiles.WINDOW
        """The most level-0 tiles a piece of :meth:`leaf_tile_parts` is compared with
        (default: :data:`openloop_ledger.audit.leaf_tiles.WINDOW`, read when constructed)."""
        self._tile_check = TileCheck(upper_tiles or {}, self._sealed_tile, self._find)
        """The upper tiles (level 1 and above), checked against the rows' tree."""
        self.history_accounts = frozenset(
            account["id"] for account in history_accounts if self._mac_fits(account)
        )
        """Accounts with ``history`` whose MAC fits (a flag an insider set or cleared is
        reported as an account finding, not as every history row it implies): their
        balance rows are checked. :func:`digest_rows` must be given the same set."""
        self._unexpected: list[tuple[str, Finding]] = []
        """History rows of accounts not checked: findings only if the account's MAC fits."""
        self._tree = CompactTree()
        self._replay = Replay()
        self._expected = 0
        """The next position the tree takes: the tree holds a leaf (or a placeholder for a
        missing row) at every position below it, so each checkpoint is checked at its size."""
        self._missing: list[tuple[int, int]] = []
        """The ranges of positions ``[start, end)`` reported missing and given placeholder
        leaves, in order: a row for one of them that arrives later came out of order."""
        self._rows_wanted: dict[int, bytes] = {}
        """Positions whose rows differ from the sealed leaves, not yet classified, with
        those sealed leaves: the tiles they come from may be let go before the rows come."""
        self._sealed_wanted: dict[int, bytes] = {}
        """The sealed leaves of the positions :meth:`take_rows_wanted` returned last."""
        self.classifier = MismatchClassifier(self._find_differing)
        """Tells changed rows from moved ones (its counters show the work it did)."""
        self._differing: list[Finding] = []
        """The classifier's findings, until :meth:`finish` knows which signed roots hold."""
        self._roots_checked: list[int] = []
        self._roots_hold: list[bool] = []
        """Per checkpoint size the rows reached, in order: whether they hash to its root."""
        self._history = HistoryCheck(self._find, self.history_accounts, self._find_unexpected)
        self._timeouts = TimeoutCheck(self._find)
        self._origin = log_origin(verifiers)
        self._checkpoints = self._open(verifiers, checkpoints)
        self._next = 0

    def _open(
        self, verifiers: Sequence[Verifier], checkpoints: Iterable[SignedCheckpoint]
    ) -> list[SignedCheckpoint]:
        """The checkpoints signed by one of ``verifiers``' keys whose notes match their rows
        and carry the log's origin (a note the log's key signed for another log, say a test
        log sharing the key, commits this log to nothing)."""
        opened = []
        by_key = self.report.checkpoints_by_key
        for checkpoint in sorted(checkpoints, key=lambda c: c.tree_size):
            try:
                text, signers = signed_text(checkpoint.signed_note, verifiers)
                body = Checkpoint.parse(text)
            except NoteError as error:
                self._find(_NOT_A_ROW, "checkpoint", f"checkpoint {checkpoint.tree_size}: {error}")
                continue
            if body.origin != self._origin:
                self._find(
                    _NOT_A_ROW,
                    "checkpoint",
                    f"checkpoint {checkpoint.tree_size} is signed for log {body.origin!r}, "
                    f"not {self._origin!r}: it is no checkpoint of this log",
                )
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
            self._check_right_edge(checkpoint)
            for signer in signers:
                by_key[signer.key_id] = by_key.get(signer.key_id, 0) + 1
        self.report.checkpoints_verified = len(opened)
        return opened

    def _check_right_edge(self, checkpoint: SignedCheckpoint) -> None:
        """The stored right edge must give the signed root: the sealer resumes from it, and
        refuses (stalls) when it does not."""
        edge = checkpoint.right_edge
        if edge is None:
            return
        hashes = [edge[i : i + HASH_SIZE] for i in range(0, len(edge), HASH_SIZE)]
        try:
            good = CompactTree(checkpoint.tree_size, hashes).root() == checkpoint.root_hash
        except ValueError:  # the wrong number or size of hashes
            good = False
        if not good:
            self._find(
                _NOT_A_ROW,
                "checkpoint",
                f"checkpoint {checkpoint.tree_size}'s stored right edge does not give its "
                "signed root: it was changed, and the sealer cannot extend the log from it",
            )

    def _find(self, position: int, kind: str, message: str) -> None:
        self.report.findings.append(_finding(position, kind, message))

    def _find_differing(self, position: int, kind: str, message: str) -> None:
        self._differing.append(_finding(position, kind, message))

    def _find_unexpected(self, account_id: str, position: int, message: str) -> None:
        self._unexpected.append((account_id, _finding(position, "balance", message)))

    def feed(self, rows: Iterable[Row]) -> None:
        """Transfer rows in position order (any chunking), compared with the level-0 tiles
        held: all of them when given to the constructor. A source that reads tiles as the
        journal is fed goes through :meth:`leaf_tile_parts` instead
        (:func:`openloop_ledger.audit.sources.feed`)."""
        rows = list(rows)
        self.feed_digest(self.digest(rows))
        self.add_rows_wanted(rows)

    def digest(self, rows: Iterable[Row]) -> RangeDigest:
        """Rows' leaf hashes and replay inputs, as :meth:`feed_digest` takes them."""
        return digest_rows(self._encoder, rows, self.history_accounts)

    def add_rows_wanted(self, rows: Sequence[Row]) -> None:
        """Classify those of ``rows`` (just fed) that differ from their sealed leaves."""
        wanted = self.take_rows_wanted()
        if wanted:
            wanted_set = set(wanted)
            self.add_mismatched_rows(row for row in rows if row["position"] in wanted_set)

    def leaf_tile_parts(self, digest: RangeDigest) -> Iterator[tuple[list[int], RangeDigest]]:
        """``digest`` in pieces, each with the level-0 tiles it is compared with, at most
        :attr:`leaf_tile_window`: hold each piece's tiles (:meth:`hold_leaf_tiles`), then
        feed it (:meth:`feed_digest`), in turn."""
        return leaf_tiles.parts(digest, self._expected, self.leaf_tile_window)

    def hold_leaf_tiles(self, tiles: Mapping[int, bytes]) -> None:
        """Hold ``tiles`` (level-0, by index) in place of those held so far."""
        self._sealed_tiles = tiles
        self.report.leaf_tiles_held = max(self.report.leaf_tiles_held, len(tiles))

    def _sealed_tile(self, index: int) -> bytes:
        return self._sealed_tiles.get(index, b"")

    def feed_digest(self, digest: RangeDigest) -> None:
        """A range hashed elsewhere (another process): its leaf hashes and replay inputs."""
        tree = self._tree
        for position, transfer_id in digest.inserted:
            self._find(
                position,
                "inserted",
                f"transfer {transfer_id!r} lies at position {position}, outside the journal "
                "(positions start at 0): the row was inserted",
            )
        for position, transfer_id, why in digest.malformed:
            self._find(
                position,
                "changed",
                f"transfer {transfer_id!r} at position {position} {why}: the row was changed",
            )
        for start, hashes in digest.runs:
            if start < self._expected:
                # Rows for positions the tree has passed: named, but no leaves (the tree
                # keeps one leaf per position, so that every root is checked at its size).
                late = min(len(hashes) // HASH_SIZE, self._expected - start)
                self._late(start, start + late)
                if late * HASH_SIZE == len(hashes):
                    continue
                start, hashes = start + late, hashes[late * HASH_SIZE :]  # noqa: PLW2901
            if start > self._expected:
                self._gap(start)
                self._expected = start
            end = start + len(hashes) // HASH_SIZE
            self._compare_with_sealed(start, hashes)
            position = start
            while position < end:
                # Up to the next checkpoint size in one go, then check that root.
                stop = min(end, self._next_root_size())
                tree.extend_concatenated(
                    hashes[(position - start) * HASH_SIZE : (stop - start) * HASH_SIZE],
                    self._tile_check.tile_root,
                )
                position = stop
                self._check_roots()
            self._expected = end
        replay = self._replay
        for account_id, debits, credits in digest.plain_totals:
            totals = replay.accounts.get(account_id) or replay.totals(account_id)
            totals.debits_posted += debits
            totals.credits_posted += credits
        tracked = self.history_accounts
        history = self._history
        apply = replay.apply
        # TRANSFER_COLUMNS order: id, position, debit, credit, amount, pending_id, timeout,
        # flags, ledger, code, user_data, create_time (by index: unpacking the rest would
        # build a list per row). Position, timeout and create_time say when a pending
        # transfer's hold expires (see check_timeouts).
        for row in digest.ordered:
            transfer_id, debit, credit = row[0], row[2], row[3]
            apply(transfer_id, debit, credit, row[4], row[7], row[5], row[1], row[6], row[11])
            if debit in tracked:
                history.expect(row[1], debit, transfer_id, replay.accounts[debit])
            if credit in tracked:
                history.expect(row[1], credit, transfer_id, replay.accounts[credit])
        self.report.leaves = tree.size

    @property
    def replayed_to(self) -> int:
        """The position after the last row fed: every history row below it can be checked."""
        return self._expected

    def check_history(self, stored: Iterable[Row], upto: int | None) -> None:
        """Stored history rows at positions below ``upto`` (all that remain when ``None``),
        in position order; call after feeding the journal up to ``upto``."""
        self._history.compare(stored, upto)

    def expect_timeouts(self) -> None:
        """Check the ``pending_timeouts`` table: call once the whole journal is fed, then
        pass its rows to :meth:`check_timeouts`; :meth:`finish` names the rows missing.
        Not called (an export made before the table was exported), it is not checked."""
        self._timeouts.expect(self._replay.unresolved_with_timeout())

    def check_timeouts(self, stored: Iterable[Row]) -> None:
        """Stored ``pending_timeouts`` rows (any order and chunking), each with the journal
        position of the transfer it names (``None`` if none), after :meth:`expect_timeouts`."""
        self._timeouts.compare(stored)

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
                        self._rows_wanted[position + index] = sealed[piece]
            position = stop

    def take_rows_wanted(self) -> list[int]:
        """The positions ``feed_digest`` found differing from the sealed leaves since the
        last call, in order: pass their rows to :meth:`add_mismatched_rows` before feeding
        more."""
        self._sealed_wanted, self._rows_wanted = self._rows_wanted, {}
        return list(self._sealed_wanted)

    def add_mismatched_rows(self, rows: Iterable[Row]) -> None:
        """The rows at the positions ``take_rows_wanted`` returned, in position order."""
        encoder = self._encoder
        for row in rows:
            position = row["position"]
            sealed = self._sealed_wanted.get(position)
            if sealed is None:
                continue
            try:
                leaf: bytes | None = leaf_of_row(encoder, row)
            except _UNENCODABLE_ERRORS:
                leaf = None  # reported by feed_digest as malformed
            self.classifier.add(position, row["id"], leaf, sealed)

    def _next_root_size(self) -> int:
        if self._next < len(self._checkpoints):
            return self._checkpoints[self._next].tree_size
        return _NOT_A_ROW

    def _gap(self, position: int) -> None:
        """Positions from ``_expected`` up to ``position`` have no row: name them deleted,
        and give each a placeholder leaf, so that later roots are still checked per size."""
        self._find(
            self._expected,
            "deleted",
            f"journal positions {self._expected}..{position - 1} are missing "
            f"(rows deleted); the next row present is at {position}",
        )
        self._missing.append((self._expected, position))
        self._check_roots()  # one at the gap's start (size 0, when the gap starts there)
        while self._tree.size < position:
            self._tree.append(hashlib.sha256(b"missing").digest())
            self._check_roots()

    def _late(self, start: int, end: int) -> None:
        """Rows at positions ``start..end - 1`` arrived after the tree passed them: the
        source lists them out of position order, too far for it to put them back (see
        :class:`openloop_ledger.audit.sources.ExportSource`), or repeats positions.

        A database is read in position order, with one row per position, and never gets
        here. The rows are still replayed; as leaves, their places keep what came first
        (a placeholder where the rows were reported missing), so no root is checked
        against a tree that is off by a leaf."""
        index = bisect_right(self._missing, (start, _NOT_A_ROW)) - 1
        listed = f"the source lists rows at positions {start}..{end - 1} after position "
        if index >= 0 and self._missing[index][0] <= start < self._missing[index][1]:
            self._find(
                start,
                "reordered",
                f"{listed}{self._expected - 1}, too late to be hashed in their place "
                "(reported missing): the rows are out of position order",
            )
        else:
            self._find(
                start,
                "inserted",
                f"{listed}{self._expected - 1}, as second rows at those positions: the rows "
                "were inserted",
            )

    def listed_out_of_order(self, rows: Iterable[tuple[int, str, int]]) -> None:
        """Rows a source listed after a row at a higher position: (position, transfer id,
        that higher position). A database is read in position order; an export is a file
        whose lines can be reordered without changing a row, which the source puts back
        in place (:class:`openloop_ledger.audit.sources.ExportSource`): still a finding,
        since the ledger never writes an export that way."""
        for position, transfer_id, after in rows:
            self._find(
                position,
                "reordered",
                f"the source lists the row at position {position} (transfer "
                f"{transfer_id!r}) after the one at position {after}: the rows are out of "
                "position order",
            )

    def tiles_listed_out_of_order(self, lines: Iterable[tuple[int, int, bool]]) -> None:
        """Level-0 tiles a source listed after a tile at a higher (or the same) index:
        (tile index, that index, whether it came in time to be compared with its rows).
        An export lists its tiles in order; one listed too late was not compared, and its
        rows were checked against the signed roots alone: named, as such."""
        for index, after, in_time in lines:
            first = index * TILE_WIDTH
            late = (
                ""
                if in_time
                else f", too late to be compared with the rows at positions {first}.."
                f"{first + TILE_WIDTH - 1} (they were checked without their sealed leaf hashes)"
            )
            self._find(
                first,
                "tile",
                f"the source lists level-0 tile {index} after tile {after}{late}: the tile "
                "lines are out of order",
            )

    def _check_roots(self) -> None:
        while self._next < len(self._checkpoints):
            checkpoint = self._checkpoints[self._next]
            size = checkpoint.tree_size
            if size > self._tree.size:
                return
            if size < self._tree.size:
                # Never expected: the tree grows up to each checkpoint size and stops there.
                # But a root that was not checked must not pass for one that holds.
                self._find(
                    max(size - 1, 0),
                    "checkpoint",
                    f"checkpoint {size} was not checked: the rows passed its size (the tree "
                    f"holds {self._tree.size} leaves)",
                )
            else:
                holds = self._tree.root() == checkpoint.root_hash
                self._roots_checked.append(size)
                self._roots_hold.append(holds)
                if not holds:
                    self._find(
                        max(size - 1, 0),
                        "checkpoint",
                        f"the rows no longer hash to the signed root of checkpoint {size}: "
                        f"a row before position {size} was changed, deleted, inserted or "
                        "reordered",
                    )
            self._next += 1

    def finish(self, accounts: Iterable[Row], journal_size: int) -> Report:
        """Check the rows against the journal's size, the tail of checkpoints and balances."""
        self._check_roots()  # one at the tree's size, if no row came (an empty journal)
        self.classifier.finish()
        self._attribute_differing()
        self._history.compare((), None)
        self._timeouts.finish()
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
        elif journal_size > size:
            # The journal's size is written in the same transaction as the rows: rows
            # missing below it were deleted, even where no checkpoint covers them yet.
            self._find(
                size,
                "deleted",
                f"the journal holds {journal_size} transfers, but the rows end at "
                f"{size - 1}: positions {size}..{journal_size - 1} are missing",
            )
        self.report.unsealed = max(0, size - sealed_size)
        self._check_accounts(accounts)
        self.report.findings.sort()
        return self.report

    def _attribute_differing(self) -> None:
        """A row that differs from its sealed leaf, while the rows up to it still hash to
        the next signed root, was not changed: the sealed leaf hash (its level-0 tile) was,
        and the inclusion proofs served from that tile are wrong."""
        for finding in self._differing:
            index = bisect_right(self._roots_checked, finding.position)
            if index < len(self._roots_checked) and self._roots_hold[index]:
                size = self._roots_checked[index]
                tile, offset = divmod(finding.position, TILE_WIDTH)
                finding = _finding(  # noqa: PLW2901 - the same finding, attributed
                    finding.position,
                    "tile",
                    f"the sealed leaf hash of position {finding.position} (level-0 tile "
                    f"{tile}, entry {offset}) does not match its row, but the rows still hash "
                    f"to the signed root of checkpoint {size}: the tile was changed, and "
                    "proofs served from it fail",
                )
            self.report.findings.append(finding)
        self._differing.clear()

    def _check_accounts(self, accounts: Iterable[Row]) -> None:
        replayed = self._replay.accounts
        for problem in self._replay.problems:
            self._find(_NOT_A_ROW, "balance", problem)
        seen = set()
        doubtful = set()
        for account in accounts:
            account_id = account["id"]
            seen.add(account_id)
            if not self._check_mac(account):
                doubtful.add(account_id)
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
        # An account whose MAC does not fit is reported already; its history flag is
        # not to be trusted, nor are the history rows it would explain.
        self.report.findings.extend(
            finding for account_id, finding in self._unexpected if account_id not in doubtful
        )

    def _mac_fits(self, account: Row) -> bool:
        mac = account.get("mac")
        return mac is not None and bytes(mac) == mac_of_row(self._mac_key, account)

    def _check_mac(self, account: Row) -> bool:
        """Whether ``account``'s MAC fits; if not, a finding says why."""
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
        else:
            return True
        return False


_UNENCODABLE_ERRORS = (struct.error, ValueError, TypeError, OverflowError, IndexError)
"""What encoding a row the ledger cannot have written raises: a value outside its leaf
field (a flag beyond 16 bits, a negative amount), an id longer than 255 bytes, a value
of the wrong type in an export."""
_NO_POSITION = -(2**64)
"""Below every BIGINT position: the first row always starts a run."""
_UNENCODABLE = hashlib.sha256(b"unencodable").digest()
"""The leaf hash given to such a row: it matches no sealed leaf and no signed root."""


def digest_rows(
    encoder: LeafEncoder, rows: Iterable[Row], history_accounts: Collection[str] = frozenset()
) -> RangeDigest:
    """Leaf hashes and replay inputs of journal rows in position order (gaps allowed).

    Plain transfers touching one of ``history_accounts`` are kept in order, so that the
    verifier knows those accounts' balances after each of them."""
    runs: list[tuple[int, bytes]] = []
    hashes: list[bytes] = []
    run_start = expected = _NO_POSITION
    debits: dict[str, int] = {}
    credits: dict[str, int] = {}
    ordered: list[Ordered] = []
    malformed: list[tuple[int, str, str]] = []
    inserted: list[tuple[int, str]] = []
    tracked = history_accounts
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
            if position < 0:
                inserted.append((position, transfer_id))
                continue
            if hashes:
                runs.append((run_start, b"".join(hashes)))
            hashes = []
            run_start = position
        try:  # free in Python 3.11 unless it raises
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
        except _UNENCODABLE_ERRORS as error:
            hashes.append(_UNENCODABLE)
            malformed.append((position, transfer_id, f"cannot be a leaf ({error})"))
            if type(flags) is not int or type(amount) is not int:
                expected = position + 1
                continue  # an export's row of the wrong shape: nothing to replay
        expected = position + 1
        if pending_id == "":
            # The ledger writes NULL for "no pending transfer", and the leaf encodes NULL
            # and '' alike: only the row can show the edit.
            malformed.append(
                (position, transfer_id, "has pending_id '' where the ledger writes NULL")
            )
        if flags & TWO_PHASE or (tracked and (debit in tracked or credit in tracked)):
            ordered.append(values)
        else:
            debits[debit] = debits.get(debit, 0) + amount
            credits[credit] = credits.get(credit, 0) + amount
    if hashes:
        runs.append((run_start, b"".join(hashes)))
    totals = [(a, debits.get(a, 0), credits.get(a, 0)) for a in debits.keys() | credits.keys()]
    return RangeDigest(runs, totals, ordered, malformed, inserted)
