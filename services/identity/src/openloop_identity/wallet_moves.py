"""Moving a citizen's wallet to another participant, as identity sees it: begin and complete.

The citizen asks a new participant to host their wallet and proves it is them with an identity
assertion (IAL 2.3 and AAL 2.1 by default: the new participant takes the whole balance).
*Begin* verifies that in one transaction with freezing the wallet, so from its commit no payment
can spend from it (``VerifyPaymentParties`` refuses WALLET_MOVE_IN_PROGRESS). The orchestrator
(the gateway) then moves the balance into a new ledger account at the new participant, closes
the old one, records the obligation between the two participants in settlement, and calls
*complete*, which hands the wallet over. A begun move cannot be cancelled: it only waits for its
money to move, so every step after begin is idempotent and retried until it succeeds.

The old participant is not asked. A citizen may leave a participant that is suspended or
closing (that is how a stopping participant's wallets find a new home), and a participant
has no say over whether its customer leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_identity import errors
from openloop_identity.assertions import AssertionRejectedError, AssertionVerifier
from openloop_identity.domain.assurance import Purpose
from openloop_identity.domain.model import (
    Capability,
    NewWalletMove,
    WalletMove,
    WalletMoveState,
)
from openloop_identity.domain.wallets import wallet_move_name
from openloop_identity.pii import CitizenIdTokenizer
from openloop_identity.store import wallet_moves
from openloop_identity.store.participants import require_wallet_host
from openloop_identity.store.replays import PostgresReplayGuard
from openloop_runtime.timestamps import utc_now


class WalletMoves:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        verifier: AssertionVerifier | None,
        tokenizer: CitizenIdTokenizer,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._verifier = verifier
        self._tokenizer = tokenizer
        self._clock = clock

    async def begin(self, new: NewWalletMove) -> WalletMove:
        """The move, begun now or by an earlier identical request."""
        now = self._clock()
        async with self._engine.begin() as conn:
            citizen = await wallet_moves.lock_citizen(conn, new.citizen_id)
            found = await wallet_moves.find(conn, new.citizen_id, new.wallet_move_id)
            if found is not None:
                return _replayed(found, new)
            # The citizen's own assertion first: until the caller proved it acts for this
            # citizen, nothing about the citizen's state (erased, moving, host) is revealed.
            # A refusal below rolls the assertion's claim back with the transaction.
            await self._verify(new, citizen.citizen_token, now, guard=PostgresReplayGuard(conn))
            if citizen.erase_time is not None:
                raise errors.citizen_data_erased(new.citizen_id)
            if citizen.wallet_move_id is not None:
                raise errors.wallet_move_in_progress(new.citizen_id, citizen.wallet_move_id)
            if citizen.hosting_participant_id == new.to_participant_id:
                raise errors.wallet_already_hosted(new.citizen_id, new.to_participant_id)
            await require_wallet_host(
                conn,
                new.to_participant_id,
                field="to_participant",
                capability=Capability.PAYER_BANK,
            )
            return await wallet_moves.begin(
                conn,
                new,
                from_participant_id=citizen.hosting_participant_id,
                from_generation=citizen.wallet_generation,
            )

    async def complete(self, citizen_id: str, wallet_move_id: str) -> WalletMove:
        """Hand the wallet to the move's new participant; a completed move comes back as is."""
        async with self._engine.begin() as conn:
            found = await wallet_moves.find(conn, citizen_id, wallet_move_id, lock=True)
            if found is None:
                raise errors.wallet_move_not_found(wallet_move_name(citizen_id, wallet_move_id))
            move, _ = found
            if move.state is WalletMoveState.COMPLETED:
                return move
            return await wallet_moves.complete(conn, move)

    async def get(self, citizen_id: str, wallet_move_id: str) -> WalletMove:
        async with self._engine.connect() as conn:
            found = await wallet_moves.find(conn, citizen_id, wallet_move_id)
        if found is None:
            raise errors.wallet_move_not_found(wallet_move_name(citizen_id, wallet_move_id))
        return found[0]

    async def _verify(
        self, new: NewWalletMove, citizen_token: str, now: datetime, *, guard: PostgresReplayGuard
    ) -> None:
        """The citizen's own assertion, at the wallet-move levels, spent in this transaction."""
        if self._verifier is None:
            raise errors.assertion_rejected(
                "ASSERTION_UNTRUSTED_ISSUER",
                "this platform trusts no identity provider yet: no wallet can move",
                field="identity_assertion",
            )
        try:
            verified = await self._verifier.verify(
                new.identity_assertion,
                purpose=Purpose.WALLET_MOVE,
                now=now,
                replay_guard=guard,
            )
        except AssertionRejectedError as refused:
            raise errors.assertion_rejected(
                refused.reason.value, str(refused), field="identity_assertion"
            ) from None
        if self._tokenizer.token(verified.pid) != citizen_token:
            raise errors.assertion_rejected(
                "ASSERTION_SUBJECT_MISMATCH",
                "the identity assertion is for another person than the wallet's citizen",
                field="identity_assertion",
            )


def _replayed(found: tuple[WalletMove, str], new: NewWalletMove) -> WalletMove:
    """A retry of a move: the same participant and the same assertion, or IDEMPOTENCY_KEY_REUSED.

    The assertion was spent by the first request; a retry resends it and is recognised by its
    digest, not verified again (it may have expired since)."""
    move, digest = found
    if (move.to_participant_id, digest) != (new.to_participant_id, new.assertion_digest):
        raise errors.wallet_move_id_reused(wallet_move_name(move.citizen_id, move.wallet_move_id))
    return move
