"""Protection of personal data at rest: envelope encryption, KEK rotation, crypto-shredding.

Names, birth dates and addresses are sealed under a per-record data key wrapped by a KEK
from a ``KeyRing``. The operations are called through their module, as
``envelope.seal``, ``envelope.open``, ``envelope.rewrap`` and ``envelope.shred``, so that
``open`` never shadows the builtin in a caller's namespace. Citizen IDs are not sealed
here: they are stored only as keyed hashes (see ``openloop_identity.pii``).
"""

from openloop_identity.protection import envelope
from openloop_identity.protection.envelope import EnvelopeError, SealedRecord
from openloop_identity.protection.keyring import KeyRing, KeyRingError

__all__ = ["EnvelopeError", "KeyRing", "KeyRingError", "SealedRecord", "envelope"]
