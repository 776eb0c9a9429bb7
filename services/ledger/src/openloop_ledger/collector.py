"""The ledger process's garbage-collector setting: full collections rarely.

CPython collects its youngest generation every 700 net allocations of container objects,
the middle one every 10 of those, and the whole heap every 10 middle collections once the
objects that survived since the last full collection reach a quarter of the old ones. A
ledger under load keeps a working set of about 100,000 objects that turns over with every
batch (the batch in flight, the balances and transfers remembered for the next one), so
that quarter is reached almost every time (the more so as ``gc.freeze()`` at startup,
:func:`openloop_runtime.server.freeze_startup_heap`, takes the startup heap out of the old
generation it is a quarter of): in ``gc.callbacks`` measurements of a ledger
taking 2,000-transfer batches from 16 clients, full collections took 660 ms of every 5 s
(up to 72 ms each) and the two young generations another 300.

Considering a full collection only every ``FULL_COLLECTION_AFTER`` middle collections (about
every 40 s under that load) leaves the young generations as they are: cycles that die
young, as most of asyncio's do, are freed as soon as before, and only what reached the old
generation waits for the rarer full collection.

Measured in three interleaved pairs on the 2-core machine: 26,514 / 24,326 / 26,073
batched transfers a second before, 38,017 / 35,301 / 28,243 after (the server's CPU per
transfer 25.0 / 27.8 / 26.3 µs before, 18.0 / 18.7 / 23.1 after), the same resident memory
(153-158 MB) and single-transfer rates within the machine's noise.

CPython 3.11-3.13 read the third threshold so; a later collector that ignores it leaves
this a no-op, and ``test_ledger_collector.py`` then says so.
"""

from __future__ import annotations

import gc

FULL_COLLECTION_AFTER = 1000
"""Middle-generation collections between two full collections considered (CPython: 10)."""


def collect_less_often() -> None:
    """Set the process's collector as the module's docstring explains; the young
    generations keep their thresholds."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)
