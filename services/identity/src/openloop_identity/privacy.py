"""A citizen's rights over their personal data (PDPA), and the key rotation behind it.

- **Export**: the hosting participant, acting for the citizen, gets everything held about
  them, the sealed fields opened.
- **Erasure** is crypto-shredding: the record's wrapped data key is destroyed, so name, birth
  date and address can never be opened again, by any key, while the citizen's opaque name
  stays valid for the ledger and settlement, whose records therefore stay consistent and
  verifiable. The keyed citizen-ID token stays too: the program's one-entitlement-per-person
  rule is a legal obligation that outlives the erasure (and the token reveals nothing without
  the HMAC key).
- **Re-wrapping** moves every record's data key under the active key-encryption key, a
  batch at a time, so an old key can be retired without downtime.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_identity import errors
from openloop_identity.domain.model import Citizen
from openloop_identity.enrolment import personal_data_context
from openloop_identity.protection import EnvelopeError, KeyRing, SealedRecord, envelope
from openloop_identity.store import audit, rows
from openloop_identity.store.audit import AuditAction
from openloop_identity.tables import citizens
from openloop_runtime.names import format_name
from openloop_runtime.operators import Operator
from openloop_runtime.timestamps import utc_now

_log = logging.getLogger(__name__)

REWRAP_BATCH = 500


class Privacy:
    def __init__(
        self,
        engine: AsyncEngine,
        keyring: KeyRing,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._keyring = keyring
        self._clock = clock

    async def export(
        self, citizen_id: str, acting_participant_id: str, operator: Operator
    ) -> tuple[Citizen, dict[str, str] | None]:
        """The citizen and their opened personal data (None once erased, or for a citizen
        enrolled before personal data was collected).

        Every export that answers is a read of personal data the PDPA asks us to account
        for, so it records who read whose data for which bank, in a transaction that commits
        only once the data has been opened: a refused or failed export records nothing."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(select(citizens).where(citizens.c.citizen_id == citizen_id))
            ).first()
            if row is None:
                raise errors.citizen_not_found(citizen_id)
            _require_host(row.hosting_participant_id, citizen_id, acting_participant_id)
            citizen = rows.citizen(row)
            opened = None
            if row.erase_time is None and row.personal_data is not None:
                opened = envelope.open(
                    bytes(row.personal_data),
                    keyring=self._keyring,
                    context=personal_data_context(citizen_id),
                )
            await audit.record(
                conn,
                operator,
                AuditAction.EXPORT_CITIZEN_DATA,
                format_name("citizens", citizen_id),
                acting_participant_id=acting_participant_id,
                details={"personal_data_returned": opened is not None},
            )
        return citizen, opened

    async def erase(
        self, citizen_id: str, acting_participant_id: str, operator: Operator
    ) -> Citizen:
        """Shred the citizen's personal data, recording who did it for which bank; erasing
        an erased citizen again changes nothing and records nothing."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(citizens).where(citizens.c.citizen_id == citizen_id).with_for_update()
                )
            ).first()
            if row is None:
                raise errors.citizen_not_found(citizen_id)
            _require_host(row.hosting_participant_id, citizen_id, acting_participant_id)
            if row.erase_time is not None:
                return rows.citizen(row)
            shredded = (
                None
                if row.personal_data is None
                else envelope.shred(bytes(row.personal_data)).to_bytes()
            )
            updated = await conn.execute(
                update(citizens)
                .where(citizens.c.citizen_id == citizen_id)
                .values(personal_data=shredded, personal_data_kek=None, erase_time=self._clock())
                .returning(*citizens.c)
            )
            await audit.record(
                conn,
                operator,
                AuditAction.ERASE_CITIZEN_DATA,
                format_name("citizens", citizen_id),
                acting_participant_id=acting_participant_id,
            )
            return rows.citizen(updated.one())

    async def run(self, interval_seconds: float) -> None:
        """Re-wrap forever, every ``interval_seconds`` (the service runs it in the background)."""
        while True:
            try:
                await self.rewrap_all()
            except Exception:  # a database blip must not end the loop
                _log.exception("re-wrapping personal data failed; retrying later")
            await asyncio.sleep(interval_seconds)

    async def rewrap_batch(self, limit: int = REWRAP_BATCH) -> int:
        """Re-wrap up to ``limit`` records not yet under the active key; returns how many.
        Rows are locked with SKIP LOCKED, so replicas can run this side by side."""
        active = self._keyring.active_id
        async with self._engine.begin() as conn:
            result = await conn.execute(
                select(citizens.c.citizen_id, citizens.c.personal_data)
                .where(
                    citizens.c.personal_data.is_not(None),
                    citizens.c.erase_time.is_(None),
                    or_(
                        citizens.c.personal_data_kek.is_(None),
                        citizens.c.personal_data_kek != active,
                    ),
                )
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            found = result.all()
            for citizen_id, data in found:
                try:
                    sealed = SealedRecord.from_bytes(bytes(data))
                    if sealed.kek_id != active:
                        sealed = envelope.rewrap(
                            sealed,
                            keyring=self._keyring,
                            context=personal_data_context(citizen_id),
                        )
                except EnvelopeError as broken:
                    # Damaged or under a key no longer configured: say so loudly, keep going.
                    _log.error(
                        "personal data cannot be re-wrapped",
                        extra={"citizen": citizen_id, "reason": broken.reason},
                    )
                    continue
                await conn.execute(
                    update(citizens)
                    .where(citizens.c.citizen_id == citizen_id)
                    .values(personal_data=sealed.to_bytes(), personal_data_kek=sealed.kek_id)
                )
        return len(found)

    async def rewrap_all(self) -> int:
        """Re-wrap in batches until a batch comes back short; returns how many."""
        total = 0
        while True:
            moved = await self.rewrap_batch()
            total += moved
            if moved < REWRAP_BATCH:
                break
        if total:
            _log.info(
                "personal data re-wrapped",
                extra={"records": total, "kek": self._keyring.active_id},
            )
        return total


def _require_host(host_id: str, citizen_id: str, acting_participant_id: str) -> None:
    """Another participant's citizen is answered exactly like one that does not exist, so
    a participant learns nothing of citizens it does not host (not even that they exist)."""
    if host_id != acting_participant_id:
        raise errors.citizen_not_found(citizen_id)
